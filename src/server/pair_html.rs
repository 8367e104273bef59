//! The re-pair page's markup and words, in English and Brazilian
//! Portuguese, rendered with maud: everything interpolated is escaped
//! (there is no `PreEscaped` here). No script, no inline style: the
//! stylesheet is `/pair/style.css`, so the page keeps the status page's
//! Content-Security-Policy.

use maud::{DOCTYPE, Markup, html};

use crate::config::Language;
use crate::domain::Ts;

/// Why the page shows no QR code right now (each said in the reader's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The provider is starting the session (or was just asked to).
    Starting,
    /// The provider has not issued a QR code yet.
    NotIssued,
    /// The session was started moments ago; the next try comes by itself.
    Cooldown,
    /// The provider reports a state that needs a person on its side.
    NeedsPerson,
    /// The provider did not answer as expected.
    Provider,
}

/// What the page shows of one link.
#[derive(Debug, Clone)]
pub enum View {
    /// The QR code (`/pair/<token>/qr.png`), reloaded every `refresh_secs`.
    Qr,
    /// No QR code now, and why; the page tries again by itself.
    Waiting(Wait),
}

/// A pairing-code request's outcome, shown above the QR code.
#[derive(Debug, Clone)]
pub enum CodeNote {
    /// The code to type on the phone.
    Code(String),
    /// The number was refused (what to fix).
    BadPhone,
    /// The provider gave no code now.
    NoCode,
    /// Too many codes asked through this link or from this address.
    TooMany(u64),
}

struct Words {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    steps: [&'static str; 3],
    refreshes: &'static str,
    alt: &'static str,
    code_title: &'static str,
    code_help: &'static str,
    phone_label: &'static str,
    phone_hint: &'static str,
    get_code: &'static str,
    valid_until: &'static str,
    connected_title: &'static str,
    connected: &'static str,
    expired_title: &'static str,
    expired: &'static str,
    revoked: &'static str,
    unknown_title: &'static str,
    unknown: &'static str,
    your_code: &'static str,
    code_steps: &'static str,
    code_valid: &'static str,
    bad_phone: &'static str,
    no_code: &'static str,
    too_many: &'static str,
    forbidden: &'static str,
    back: &'static str,
    unavailable: &'static str,
}

const EN: Words = Words {
    lang: "en",
    title: "Reconnect WhatsApp",
    intro: "Your WhatsApp number was disconnected from the service that sends and receives its messages. Link it again in a minute:",
    steps: [
        "On the phone with this number, open WhatsApp.",
        "Tap Settings (or ⋮ on Android), then Linked devices, then Link a device.",
        "Point the phone at the QR code below.",
    ],
    refreshes: "The code changes every few seconds: this page refreshes itself.",
    alt: "QR code to link WhatsApp",
    code_title: "Cannot scan? Use a code instead",
    code_help: "Type the number of the phone, with its country code. WhatsApp on that phone will ask for the code shown here.",
    phone_label: "Phone number",
    phone_hint: "+55 11 98765 4321",
    get_code: "Get a code",
    valid_until: "This link works until",
    connected_title: "Connected",
    connected: "This number is connected. There is nothing more to do: you may close this page.",
    expired_title: "Link expired",
    expired: "This link has expired. Ask whoever sent it to you for a new one.",
    revoked: "This link was withdrawn. Ask whoever sent it to you for a new one.",
    unknown_title: "Link not found",
    unknown: "This link does not exist. Check that you opened all of it, or ask whoever sent it to you for a new one.",
    your_code: "Your code",
    code_steps: "On the phone: WhatsApp → Linked devices → Link a device → Link with phone number instead, then type this code.",
    code_valid: "The code is valid for about a minute; if it is refused, ask for a new one.",
    bad_phone: "That does not look like a phone number: type its digits with the country code, e.g. +55 11 98765 4321.",
    no_code: "No code could be had right now: scan the QR code, or try again in a minute.",
    too_many: "Too many codes were asked. Scan the QR code, or try again in",
    forbidden: "This form is out of date: open the link again.",
    back: "Back to the QR code",
    unavailable: "Not available right now; try again in a minute.",
};

const PT: Words = Words {
    lang: "pt-BR",
    title: "Reconectar o WhatsApp",
    intro: "Seu número de WhatsApp foi desconectado do serviço que envia e recebe as mensagens dele. Conecte de novo em um minuto:",
    steps: [
        "No celular com este número, abra o WhatsApp.",
        "Toque em Configurações (ou ⋮ no Android), depois em Dispositivos conectados e em Conectar um dispositivo.",
        "Aponte o celular para o QR code abaixo.",
    ],
    refreshes: "O código muda a cada poucos segundos: esta página se atualiza sozinha.",
    alt: "QR code para conectar o WhatsApp",
    code_title: "Não consegue ler? Use um código",
    code_help: "Digite o número do celular com o código do país. O WhatsApp desse celular vai pedir o código mostrado aqui.",
    phone_label: "Número do celular",
    phone_hint: "+55 11 98765 4321",
    get_code: "Receber um código",
    valid_until: "Este link funciona até",
    connected_title: "Conectado",
    connected: "Este número está conectado. Não há mais nada a fazer: pode fechar esta página.",
    expired_title: "Link expirado",
    expired: "Este link expirou. Peça um novo a quem o enviou.",
    revoked: "Este link foi cancelado. Peça um novo a quem o enviou.",
    unknown_title: "Link não encontrado",
    unknown: "Este link não existe. Confira se abriu o link inteiro, ou peça um novo a quem o enviou.",
    your_code: "Seu código",
    code_steps: "No celular: WhatsApp → Dispositivos conectados → Conectar um dispositivo → Conectar com número de telefone, e digite este código.",
    code_valid: "O código vale por cerca de um minuto; se for recusado, peça outro.",
    bad_phone: "Isso não parece um número de celular: digite os números com o código do país, por exemplo +55 11 98765 4321.",
    no_code: "Não foi possível obter um código agora: leia o QR code, ou tente de novo em um minuto.",
    too_many: "Foram pedidos códigos demais. Leia o QR code, ou tente de novo em",
    forbidden: "Este formulário está desatualizado: abra o link de novo.",
    back: "Voltar ao QR code",
    unavailable: "Indisponível no momento; tente de novo em um minuto.",
};

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::En => &EN,
        Language::PtBr => &PT,
    }
}

fn wait_text(w: Wait, lang: Language) -> &'static str {
    match (w, lang) {
        (Wait::Starting, Language::En) => {
            "The QR code is being prepared. This page tries again by itself in a few seconds."
        }
        (Wait::NotIssued, Language::En) => "No QR code yet. This page tries again by itself in a few seconds.",
        (Wait::Cooldown, Language::En) => "The connection was restarted moments ago. This page tries again by itself.",
        (Wait::NeedsPerson, Language::En) => {
            "This number needs its provider's attention before it can be linked: ask whoever sent you this link."
        }
        (Wait::Provider, Language::En) => {
            "The QR code could not be fetched right now. This page tries again by itself."
        }
        (Wait::Starting, Language::PtBr) => {
            "O QR code está sendo preparado. Esta página tenta de novo sozinha em alguns segundos."
        }
        (Wait::NotIssued, Language::PtBr) => {
            "Ainda não há QR code. Esta página tenta de novo sozinha em alguns segundos."
        }
        (Wait::Cooldown, Language::PtBr) => "A conexão foi reiniciada há pouco. Esta página tenta de novo sozinha.",
        (Wait::NeedsPerson, Language::PtBr) => {
            "Este número precisa de atenção no provedor antes de ser conectado: fale com quem enviou este link."
        }
        (Wait::Provider, Language::PtBr) => {
            "Não foi possível obter o QR code agora. Esta página tenta de novo sozinha."
        }
    }
}

/// The page shell: the stylesheet, the viewport for phones, an optional
/// reload (`content` of the meta refresh).
fn shell(lang: Language, title: &str, refresh: Option<String>, body: Markup) -> String {
    let w = words(lang);
    html! {
        (DOCTYPE)
        html lang=(w.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                @if let Some(r) = refresh {
                    meta http-equiv="refresh" content=(r);
                }
                title { (title) }
                link rel="stylesheet" href="/pair/style.css";
            }
            body {
                main { (body) }
            }
        }
    }
    .into_string()
}

fn until(w: &Words, expires_at: Ts) -> Markup {
    let t = expires_at.rfc3339().replace('T', " ").replace('Z', " UTC");
    html! { p.muted { (w.valid_until) " " (t) "." } }
}

fn code_form(w: &Words, token: &str, form: &str) -> Markup {
    html! {
        section.code {
            h2 { (w.code_title) }
            p.muted { (w.code_help) }
            form method="post" action={ "/pair/" (token) "/code" } {
                input type="hidden" name="form" value=(form);
                label for="phone" { (w.phone_label) }
                div.row {
                    input id="phone" type="tel" name="phone" inputmode="tel" autocomplete="tel" placeholder=(w.phone_hint) required;
                    button type="submit" { (w.get_code) }
                }
            }
        }
    }
}

fn note(w: &Words, n: &CodeNote) -> Markup {
    html! {
        @match n {
            CodeNote::Code(code) => {
                section.got {
                    h2 { (w.your_code) }
                    p.pairing-code { (code) }
                    p { (w.code_steps) }
                    p.muted { (w.code_valid) }
                }
            }
            CodeNote::BadPhone => { p.note.err { (w.bad_phone) } }
            CodeNote::NoCode => { p.note.err { (w.no_code) } }
            CodeNote::TooMany(secs) => { p.note.err { (w.too_many) " " (secs) " s." } }
        }
    }
}

/// The live page: the QR code (or why there is none), the code form, and
/// the expiry. `note` is a pairing-code request's outcome.
pub fn live(
    lang: Language,
    token: &str,
    view: &View,
    refresh_secs: u64,
    expires_at: Ts,
    note_: Option<&CodeNote>,
) -> String {
    let w = words(lang);
    let form = crate::pairing::form_token(token);
    // After a code was shown the page waits longer (a code lives about a
    // minute), then goes back to the QR code by a plain GET.
    let refresh = match note_ {
        Some(CodeNote::Code(_)) => format!("60;url=/pair/{token}"),
        Some(_) => format!("{refresh_secs};url=/pair/{token}"),
        None => refresh_secs.to_string(),
    };
    let body = html! {
        h1 { (w.title) }
        @if let Some(n) = note_ { (note(w, n)) }
        p { (w.intro) }
        ol.steps { @for s in w.steps { li { (s) } } }
        @match view {
            View::Qr => {
                div.qr { img src={ "/pair/" (token) "/qr.png" } alt=(w.alt) width="280" height="280"; }
                p.muted { (w.refreshes) }
            }
            View::Waiting(why) => { p.note { (wait_text(*why, lang)) } }
        }
        (code_form(w, token, &form))
        (until(w, expires_at))
    };
    shell(lang, w.title, Some(refresh), body)
}

/// The number is connected: the link says so and nothing else.
pub fn connected(lang: Language) -> String {
    let w = words(lang);
    shell(lang, w.connected_title, None, html! { h1 { (w.connected_title) } p.note.ok { (w.connected) } })
}

/// Expired (`revoked: false`) or revoked: ask for a new link.
pub fn gone(lang: Language, revoked: bool) -> String {
    let w = words(lang);
    let text = if revoked { w.revoked } else { w.expired };
    shell(lang, w.expired_title, None, html! { h1 { (w.expired_title) } p.note { (text) } })
}

/// An unknown (or tampered) link.
pub fn unknown(lang: Language) -> String {
    let w = words(lang);
    shell(lang, w.unknown_title, None, html! { h1 { (w.unknown_title) } p.note { (w.unknown) } })
}

/// A form that did not come from the page (403).
pub fn forbidden(lang: Language, token: &str) -> String {
    let w = words(lang);
    let body = html! { h1 { (w.title) } p.note.err { (w.forbidden) } p { a href={ "/pair/" (token) } { (w.back) } } };
    shell(lang, w.title, None, body)
}

/// The database or the provider cannot be read now (503).
pub fn unavailable(lang: Language) -> String {
    let w = words(lang);
    shell(lang, w.title, Some("15".into()), html! { h1 { (w.title) } p.note { (w.unavailable) } })
}

/// `/pair/style.css`: small, readable on a phone.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24;line-height:1.45}\
main{max-width:34rem;margin:0 auto;padding:16px}h1{font-size:1.4em;margin:8px 0 12px}h2{font-size:1.1em;margin:0 0 6px}\
.steps{padding-left:1.3em}.steps li{margin:4px 0}\
.qr{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0002;padding:12px;text-align:center;margin:12px 0}\
.qr img{width:100%;max-width:280px;height:auto;image-rendering:pixelated}\
.muted{color:#5b6470;font-size:.9em}\
.note{background:#fff8e1;border-left:4px solid #d08c00;padding:10px 12px;border-radius:4px}\
.note.ok{background:#e8f5e9;border-color:#2e8b57}.note.err{background:#fdecea;border-color:#c0392b}\
.code,.got{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0002;padding:12px;margin:16px 0}\
.got{border:2px solid #2e8b57}.pairing-code{font-size:2em;font-weight:700;letter-spacing:.12em;text-align:center;margin:6px 0;font-family:ui-monospace,monospace}\
label{display:block;font-weight:600;margin:8px 0 4px}.row{display:flex;gap:8px;flex-wrap:wrap}\
input[type=tel]{flex:1 1 12rem;font-size:1.1em;padding:8px;border:1px solid #b8bec6;border-radius:6px}\
button{font-size:1.05em;padding:8px 14px;border:0;border-radius:6px;background:#1d6f42;color:#fff}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows_and_has_no_script() {
        let token = "a".repeat(64);
        let page = live(Language::En, &token, &View::Qr, 10, Ts(0), Some(&CodeNote::Code("<b>WZYE-H1YY</b>".into())));
        assert!(page.contains("&lt;b&gt;WZYE-H1YY&lt;/b&gt;"), "{page}");
        assert!(!page.contains("<script") && !page.contains("style=\""), "{page}");
        assert!(page.contains(&format!("src=\"/pair/{token}/qr.png\"")));
        assert!(page.contains(&format!("content=\"60;url=/pair/{token}\"")), "a shown code waits a minute");
        assert!(page.contains(&format!("name=\"form\" value=\"{}\"", crate::pairing::form_token(&token))));
        let pt = live(Language::PtBr, &token, &View::Waiting(Wait::Starting), 10, Ts(0), None);
        assert!(pt.starts_with("<!DOCTYPE html><html lang=\"pt-BR\">") && pt.contains("Reconectar o WhatsApp"), "{pt}");
        assert!(pt.contains("<meta http-equiv=\"refresh\" content=\"10\">") && !pt.contains("qr.png"), "{pt}");
    }
}
