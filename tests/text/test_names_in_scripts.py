"""Authors' names in scripts other than Latin survive as written (user trial 9): a Hindi or Thai name's last
vowel sign (a combining mark) is kept, and a Chinese, Japanese or Korean name, written without a space,
is a byline, from a page and from a JSON record alike."""

from __future__ import annotations

import pytest

from newsetl.text.describe import DescribeHints, describe_article
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


@pytest.mark.parametrize("author", ["山田太郎", "王晓明", "김민수", "ジョン・スミス"])
def test_a_cjk_name_without_a_space_is_a_byline(author: str) -> None:
    assert describe_article(BODY, (), DescribeHints(author=author)).metadata.byline == author
    # as the page gives it, through trafilatura
    page = extract_html(_page(author, "zh"), url=None)
    assert describe_article(BODY, (), DescribeHints(author=page.author, content_type="html")).metadata.byline == author


@pytest.mark.parametrize("author", ["新华社", "人民日报", "연합뉴스", "ロイター", "央视", "东方卫视", "财新周刊",
                                    "澎湃传媒", "뉴시스통신", "BBC", "admin"])
def test_an_outlet_or_one_word_in_the_author_field_is_still_no_byline(author: str) -> None:
    assert describe_article(BODY, (), DescribeHints(author=author)).metadata.byline is None
