/* placeholder: assist-ui writes the widget script */
