"""Authors' names in scripts other than Latin survive as written (user trial 9): a Hindi or Thai name's last
vowel sign (a combining mark) is kept."""

from __future__ import annotations

import pytest

from newsetl.text.extract import extract_html

BODY = ("The council approved the new budget for public transport on Thursday after a long debate.\n"
        "The mayor said the first twenty trams would run next spring on the busiest lines of the city.\n")


def _page(author: str, lang: str) -> str:
    paras = "".join(f"<p>{BODY.split(chr(10))[i]}</p>" for i in range(2))
    return (f"<html lang='{lang}'><head><meta charset='utf-8'><title>Budget</title></head><body><article>"
            f"<h1>Budget approved</h1><div class='byline'><span class='author'>{author}</span></div>"
            f"{paras}</article></body></html>")


@pytest.mark.parametrize(("author", "lang"), [("राहुल शर्मा", "hi"), ("สมชาย ใจดี", "th"),
                                              ("مُحَمَّد عَلِيّ", "ar"), ("Мария Соколова", "ru")])
def test_a_page_authors_last_combining_mark_is_kept(author: str, lang: str) -> None:
    assert extract_html(_page(author, lang), url=None).author == author
