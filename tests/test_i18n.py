"""The UI is Chinese first, English second: the language switch and the English catalogue."""

from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parent.parent / "web" / "translations"
POT = TRANSLATIONS / "messages.pot"
EN_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
EN_MO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo"


def _read_po(path, locale=None):
    with open(path, "rb") as f:
        return read_po(f, locale=locale)


def _msgids(catalog):
    return {message.id for message in catalog if message.id}


def test_login_page_is_chinese_by_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    for text in ("登录", "用户名", "密码"):
        assert text in html
    assert "Log in" not in html
    assert "Username" not in html


def test_language_switch_shows_english_labels(client):
    response = client.get("/lang/en")
    assert response.status_code == 302
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html
    for text in ("Log in", "Username", "Password", "Yingjiang Brand Management"):
        assert text in html
    for text in ("用户名", "密码"):
        assert text not in html

    client.get("/lang/zh_CN")
    html = client.get("/login").get_data(as_text=True)
    assert "用户名" in html and "Username" not in html


def test_api_error_message_is_chinese_by_default(client):
    response = client.post("/api/v1/auth/token", json={"username": "market", "password": "wrong"})
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "not_authenticated"
    assert error["message"] == "用户名或密码错误"


def test_api_error_message_in_english_on_request(client):
    response = client.post("/api/v1/auth/token?lang=en",
                           json={"username": "market", "password": "wrong"})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "Incorrect username or password"


def test_every_msgid_has_an_english_translation():
    template = _read_po(POT)
    catalog = _read_po(EN_PO, locale="en")
    msgids = _msgids(template)
    assert msgids, "the .pot is empty: run `make extract`"

    untranslated = sorted(
        msgid for msgid in msgids
        if msgid not in catalog or not (catalog[msgid].string or "").strip()
    )
    assert not untranslated, f"no English translation for {untranslated}"

    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert not fuzzy, f"fuzzy entries are ignored at runtime: {fuzzy}"
    assert not catalog.fuzzy, "the catalogue header is marked fuzzy, so it will not compile"


def test_english_catalogue_checks_clean():
    """Placeholders such as %(name)s survive translation (babel's python-format checker)."""
    catalog = _read_po(EN_PO, locale="en")
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()]
    assert not problems


def test_compiled_catalogue_matches_po():
    """The tracked .mo was compiled from the current .po (`make translations`)."""
    assert EN_MO.exists(), "messages.mo is missing: run `make translations`"
    catalog = _read_po(EN_PO, locale="en")
    with open(EN_MO, "rb") as f:
        compiled = read_mo(f)
    expected = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    actual = {m.id: m.string for m in compiled if m.id}
    assert actual == expected
