"""Pairing a TV by a short code: the code's rules, and /tv/ with real Redis: a code per browser,
bound to its cookie secret, single use, expiring, rate limited."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from dashboard.screens import pairing
from metrics.models import Board, DisplayLink, Team

CODE_SHOWN = re.compile(r'id="pairing-code"[^>]*>([A-Z0-9]{3}-[A-Z0-9]{3})<')


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("ACD347", "ACD347"),
        ("acd-347", "ACD347"),
        (" a c d 3 4 7 ", "ACD347"),
        ("ACD.347", "ACD347"),
        ("acdo47", "ACD047"),  # O is read as 0
        ("ACDQ47", "ACD047"),
        ("ACDI47", "ACD147"),  # I and L as 1
        ("acdl47", "ACD147"),
    ],
)
def test_a_typed_code_is_read_as_the_code_shown(typed, code):
    assert pairing.normalise_code(typed) == code


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "Enter the code"),
        ("  - ", "Enter the code"),
        ("ACD34", "6 characters; this has 5"),
        ("ACD3477", "6 characters; this has 7"),
        ("ACDB47", "no B"),
        ("AC5-S47", "no 5 S"),
        ("ACD34é", "no É"),
    ],
)
def test_a_code_that_cannot_be_one_says_why(typed, error):
    with pytest.raises(pairing.BadCode, match=error):
        pairing.normalise_code(typed)


@given(st.integers(min_value=0, max_value=50))
def test_every_code_made_reads_back_as_itself_even_as_shown(_):
    code = pairing.generate_code()
    assert len(code) == pairing.LENGTH and set(code) <= set(pairing.ALPHABET)
    assert pairing.normalise_code(code) == code
    assert pairing.normalise_code(pairing.format_code(code).lower()) == code


def test_the_alphabet_has_no_character_that_reads_as_another():
    for confusable in "BG8S5Z2OQIL6":
        assert confusable not in pairing.ALPHABET
    assert len(set(pairing.ALPHABET)) == len(pairing.ALPHABET) == 24


@pytest.mark.parametrize(
    ("cookie", "found"),
    [
        ("ACD347:" + "s" * 43, ("ACD347", "s" * 43)),
        (None, None),
        ("", None),
        ("ACD347", None),  # no secret
        ("ACD347:short", None),
        ("acd347:" + "s" * 43, None),  # only codes as we store them
        ("ACD34*:" + "s" * 43, None),
        ("ACD3477:" + "s" * 43, None),
    ],
)
def test_only_a_cookie_as_tv_pages_set_it_is_read(cookie, found):
    assert pairing.parse_cookie(cookie) == found


# --- /tv/ over HTTP, with real Redis ---------------------------------------------------------


@pytest.fixture
def supervisor(db):
    """Supervises Sales, which shares the Floor board."""
    user = get_user_model().objects.create_user("sally", password="pw-sales-long-1")
    board = Board.objects.create(name="Floor", slug="floor")
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(user)
    team.boards.add(board)
    return user


def shown_code(response) -> str:
    assert response.status_code == 200, response.content[:300]
    found = CODE_SHOWN.search(response.content.decode())
    assert found, "no code on the page"
    return found.group(1)


def send(user, code, board="floor", name="TV by the door"):
    client = Client()
    client.force_login(user)
    return client.post(
        "/screens/send/", {"show": f"board:{board}", "code": code, "name": name}, follow=False
    )


def test_a_tv_gets_a_code_bound_to_its_browser(redis_db, db):
    tv = Client()
    first = tv.get("/tv/")
    code = shown_code(first)
    cookie = first.cookies[pairing.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/tv/"
    assert int(cookie["max-age"]) == pairing.TTL_SECONDS
    assert "no-store" in first["Cache-Control"]
    assert pairing.normalise_code(code) in cookie.value  # the secret beside it, never shown
    assert cookie.value.split(":")[1] not in first.content.decode()
    # The QR code carries the send page's address with the code filled in.
    assert "<svg" in first.content.decode() and "/screens/send/" in first.content.decode()

    assert shown_code(tv.get("/tv/")) == code  # a reload shows the same code
    assert shown_code(Client().get("/tv/")) != code  # another TV has its own
    assert tv.get("/tv/status.json").json()["state"] == "waiting"


def test_the_token_goes_once_and_only_to_the_browser_with_the_secret(redis_db, supervisor):
    tv, onlooker = Client(), Client()
    code = shown_code(tv.get("/tv/"))
    # Someone who read the code off the screen, with no cookie or a made-up secret.
    onlooker.cookies[pairing.COOKIE] = f"{pairing.normalise_code(code)}:{'x' * 43}"

    assert send(supervisor, code).status_code == 302
    link = DisplayLink.objects.get(name="TV by the door")
    assert link.board.slug == "floor" and link.created_by == supervisor

    for stranger in (onlooker, Client()):
        assert stranger.get("/tv/status.json").json() == {"state": "expired"}
        assert stranger.get("/tv/open/")["Location"] == "/tv/"
    assert tv.get("/tv/status.json").json()["state"] == "claimed"
    opened = tv.get("/tv/open/")
    token = re.fullmatch(r"/display/([\w-]+)/", opened["Location"]).group(1)
    assert len(token) == 43 and tv.get(opened["Location"]).status_code == 200
    assert tv.get("/tv/open/")["Location"] == "/tv/"  # once
    assert shown_code(tv.get("/tv/")) != code  # and the TV starts over with a fresh code


def test_a_used_code_cannot_be_used_again(redis_db, supervisor):
    code = shown_code(Client().get("/tv/"))
    assert send(supervisor, code).status_code == 302
    again = send(supervisor, code, name="Another TV")
    assert again.status_code == 400
    assert "This code was already used" in again.content.decode()
    assert not DisplayLink.objects.filter(name="Another TV").exists()


def test_an_expired_or_wrong_code_is_refused_and_the_tv_gets_a_new_one(redis_db, supervisor):
    tv = Client()
    code = shown_code(tv.get("/tv/"))
    redis_db.pexpire(pairing.KEY + pairing.normalise_code(code), 1)  # its ten minutes are over
    redis_db.delete(pairing.KEY + pairing.normalise_code(code))

    refused = send(supervisor, code)
    assert refused.status_code == 400
    assert "No screen is waiting with this code" in refused.content.decode()
    assert tv.get("/tv/status.json").json() == {"state": "expired"}  # tv.js then reloads /tv/
    assert shown_code(tv.get("/tv/")) != code

    wrong = send(supervisor, "ACD-347")
    assert wrong.status_code == 400 and "No screen is waiting" in wrong.content.decode()
    malformed = send(supervisor, "AB5")
    assert malformed.status_code == 400 and "A code has no 5 B" in malformed.content.decode()
    assert not DisplayLink.objects.exists()


def test_new_codes_are_rate_limited_per_client_address(redis_db, db):
    for _ in range(pairing.CREATE_LIMIT):
        shown_code(Client(REMOTE_ADDR="203.0.113.7").get("/tv/"))
    limited = Client(REMOTE_ADDR="203.0.113.7").get("/tv/")
    assert limited.status_code == 429
    assert "Too many pairing codes" in limited.content.decode()
    assert pairing.COOKIE not in limited.cookies
    shown_code(Client(REMOTE_ADDR="203.0.113.8").get("/tv/"))  # another address is not


def test_entering_codes_is_rate_limited_per_user(redis_db, supervisor):
    for _ in range(pairing.CLAIM_LIMIT):
        assert send(supervisor, "ACD-347").status_code == 400
    code = shown_code(Client().get("/tv/"))
    limited = send(supervisor, code)  # even a right one, until the window ends
    assert limited.status_code == 429
    assert "Too many codes entered" in limited.content.decode()
    assert not DisplayLink.objects.exists()
    assert redis_db.get(pairing.KEY + pairing.normalise_code(code))  # still waiting
