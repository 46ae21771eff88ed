"""A head line that is exactly the author the record or page named is a byline line, taken out of the body,
whatever the language of the name (user trial 9): parse_byline vouches for a name by its given name, which
it knows in few languages, and JSON records' bodies kept "Ayşe Yılmaz", "김민수 기자" or "山田太郎" on top."""

from __future__ import annotations

import pytest

from newsetl.schemas.records import Article, RawDocument
from newsetl.text.describe import DescribeHints, _author_names, describe_article
from newsetl.text.pipeline import ProcessConfig, make_context, process_document

TITLE = "Istanbul opens a new metro line between Kadikoy and Atasehir"
STORY = ("The city opened the new metro line on Wednesday with a ceremony, officials said.\n"
         "About three hundred thousand passengers a day are expected to use the twelve stations.\n")


@pytest.mark.parametrize("author", ["Ayşe Yılmaz", "Nguyễn Văn Hùng", "김민수 기자", "山田太郎", "राहुल शर्मा"])
def test_the_given_authors_line_under_the_headline_leaves_the_body(author: str) -> None:
    result = describe_article(f"{TITLE}\n{author}\n{STORY}", (), DescribeHints(title=TITLE, author=author))
    assert result.metadata.byline == author
    assert author not in result.body
    assert STORY.strip() in result.body


def test_a_json_records_author_line_leaves_its_body() -> None:
    text = f"{TITLE}\nAyşe Yılmaz\n{STORY}"
    doc = RawDocument(doc_id="d1", source_uri="mem://1", kind="jsonl", content_type="text", raw=text.encode(),
                      content=text, title=TITLE, author="Ayşe Yılmaz")
    article = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(article, Article)
    assert article.byline == "Ayşe Yılmaz"
    assert article.body.startswith("The city opened")


def test_a_line_that_is_not_the_given_name_stays() -> None:
    result = describe_article(f"{TITLE}\nKadıköy Ataşehir hattı\n{STORY}", (),
                              DescribeHints(title=TITLE, author="Ayşe Yılmaz"))
    assert result.metadata.byline == "Ayşe Yılmaz"
    assert "Kadıköy Ataşehir hattı" in result.body


@pytest.mark.parametrize(("author", "expected"), [("홍길동 기자 입력", "홍길동 기자"),
                                                 ("홍길동 기자 입력 2024.12.09 10:15", "홍길동 기자"),
                                                 ("王小明 发布时间 2024-12-09", "王小明")])
def test_a_date_label_read_into_the_author_is_no_part_of_the_name(author: str, expected: str) -> None:
    # A Korean page's byline block "홍길동 기자 입력 2024.12.09 10:15" gave trafilatura's author "홍길동 기자 입력".
    assert _author_names(author) == expected
