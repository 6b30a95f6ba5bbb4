//! The device's pages, small enough for a basic phone browser: plain HTML
//! with one form, no script needed. The streamed page ([`stream_head`] and
//! one [`text_html`] paragraph per text) grows while the connection is
//! held; the refresh page ([`refresh_page`]) is whole and reloads itself by
//! `<meta http-equiv="refresh">` into a long-poll. A few lines of script,
//! where scripts run, send the form by `fetch` so the stream stays open.
//! Every text goes through [`esc`]: chat text is never HTML.

use super::link::{Author, Link, Text};
use crate::server::presence::html::esc;
use crate::Response;

/// The head of every page: title, viewport and a little style.
fn head(title: &str, extra: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">{extra}\
         <title>{}</title><style>p{{margin:.3em 0;white-space:pre-wrap}}\
         .d b{{color:#070}}.r b{{color:#007}}</style></head><body>\n",
        esc(title)
    )
}

/// The reply form, posting to `/w/KEY/reply`; `view` is the page to go
/// back to (`stream` or `page`).
fn form(key: &str, view: &str) -> String {
    format!(
        "<form id=\"f\" method=\"post\" action=\"/w/{key}/reply\">\
         <input type=\"hidden\" name=\"view\" value=\"{view}\">\
         <input name=\"msg\" maxlength=\"1000\" autocomplete=\"off\" size=\"20\"> \
         <button type=\"submit\">Send</button></form>\n"
    )
}

/// Where scripts run: send the form by `fetch` (the held page stays open;
/// the reply comes back down it).
const ENHANCE: &str = "<script>(function(){var f=document.getElementById('f');\
if(!f||!window.fetch||!window.URLSearchParams)return;f.onsubmit=function(e){e.preventDefault();\
var m=f.elements.msg.value;if(!m.trim())return;fetch(f.action,{method:'POST',\
headers:{'X-Altsock-Fetch':'1'},body:new URLSearchParams({msg:m})}).then(function(r){\
if(r.ok){f.elements.msg.value='';}else{r.text().then(function(t){alert(t);});}});};})();\
</script>\n";

/// The opening of the streamed page: form, fallback link, texts so far.
pub fn stream_head(link: &Link, key: &str) -> String {
    let mut out = head(&format!("Chat with {}", link.requester), "");
    // Some mobile browsers render nothing of a page still loading until
    // about 1 KiB has arrived: padding, as "forever frame" pages send.
    out.push_str(&format!("<!--{:1024}-->\n", ""));
    out.push_str(&format!("<h3>{}</h3>\n", esc(&link.requester)));
    out.push_str(&form(key, "stream"));
    out.push_str(&format!(
        "<p><small><a href=\"/w/{key}/page\">Page not updating? Open the refresh page.</a>\
         </small></p>\n{ENHANCE}<div id=\"t\">\n"
    ));
    for text in link.page_texts() {
        out.push_str(&text_html(text, &link.requester));
    }
    out
}

/// One text as a paragraph of the page.
pub fn text_html(text: &Text, requester: &str) -> String {
    let (class, who) = match text.author {
        Author::Requester => ("r", requester),
        Author::Device => ("d", "me"),
    };
    format!(
        "<p class=\"{class}\" id=\"t{}\"><b>{}:</b> {}</p>\n",
        text.id,
        esc(who),
        esc(&text.msg)
    )
}

/// The whole refresh page: texts so far, newest last, and a meta refresh
/// that long-polls for the next text after the last one shown.
pub fn refresh_page(link: &Link, key: &str) -> String {
    let refresh = format!(
        "<meta http-equiv=\"refresh\" content=\"1;url=/w/{key}/page?after={}\">",
        link.last_id
    );
    let mut out = head(&format!("Chat with {}", link.requester), &refresh);
    out.push_str(&format!("<h3>{}</h3>\n", esc(&link.requester)));
    out.push_str(&form(key, "page"));
    for text in link.page_texts() {
        out.push_str(&text_html(text, &link.requester));
    }
    out.push_str("</body></html>\n");
    out
}

/// A short HTML page for an answer that is not a conversation.
pub fn notice(status: u16, text: &str) -> Response {
    let mut body = head("altsock", "");
    body.push_str(&format!("<p>{}</p></body></html>\n", esc(text)));
    Response::html(status, body).header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn texts_are_escaped_never_html() {
        let now = Instant::now();
        let mut link = Link::new("<al>", "+15550109999", "t".into(), now, now);
        let text = link.add(Author::Requester, "<script>x</script> & \"q\"".into());
        let html = text_html(&text, &link.requester);
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt; &amp; &quot;q&quot;"));
        assert!(stream_head(&link, "k").contains("&lt;al&gt;"));
        assert!(refresh_page(&link, "k").contains("url=/w/k/page?after=1"));
    }
}
