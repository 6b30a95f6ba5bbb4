/* placeholder: assist-ui writes the console script */
