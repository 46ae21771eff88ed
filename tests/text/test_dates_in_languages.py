"""Dates written in the languages news comes in (user trial 9): a plain text's date line under its
headline with a Russian, Greek, Turkish, Chinese or Japanese month dates the article and leaves the body,
and a record's date in Arabic-Indic digits is read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsetl.schemas.records import Article, RawDocument
from newsetl.text.describe import DescribeHints, describe_article, parse_date
from newsetl.text.pipeline import ProcessConfig, make_context, process_document

NOV_14 = datetime(2024, 11, 14, tzinfo=UTC)

STORIES = {
    "ru": ("Городской совет утвердил бюджет на развитие транспорта", "Мария Соколова", "14 ноября 2024",
           "Депутаты городского совета в четверг большинством голосов утвердили бюджет на развитие транспорта. "
           "Согласно документу, на закупку новых трамваев будет направлено более двенадцати миллиардов рублей."),
    "el": ("Νέα μέτρα για τη στήριξη των μικρών επιχειρήσεων", "Νίκος Παπαδόπουλος", "14 Νοεμβρίου 2024",
           "Η κυβέρνηση ανακοίνωσε την Τρίτη ένα νέο πακέτο μέτρων για τη στήριξη των μικρών επιχειρήσεων. "
           "Σύμφωνα με τον υπουργό, το πρόγραμμα θα περιλαμβάνει χαμηλότοκα δάνεια και επιδοτήσεις."),
    "tr": ("İstanbul'da yeni metro hattı hizmete açıldı", "Ayşe Yılmaz", "14 Kasım 2024",
           "İstanbul Büyükşehir Belediyesi yeni metro hattını Çarşamba günü düzenlenen törenle hizmete açtı. "
           "Belediye başkanı günde üç yüz bin yolcunun yeni hattı kullanmasının beklendiğini söyledi."),
    "zh": ("上海发布新一轮城市更新计划", "王晓明", "2024年11月14日",
           "上海市政府周三发布新一轮城市更新行动计划，提出在未来五年内改造中心城区约五百万平方米的老旧住房。"
           "市住房和城乡建设管理委员会负责人在新闻发布会上表示，此次更新将重点保护历史风貌街区。"),
    "ja": ("東京都、新たな防災計画を発表", "山田太郎", "2024年11月14日",
           "東京都は十四日、首都直下地震に備えた新たな防災計画を発表した。計画では、木造住宅が密集する地域の"
           "不燃化を進め、避難所の備蓄を大幅に増やすとしている。"),
}


@pytest.mark.parametrize("lang", sorted(STORIES))
def test_a_plain_texts_date_line_in_its_language_dates_it_and_leaves_the_body(lang: str) -> None:
    title, byline, date, story = STORIES[lang]
    body = "\n".join([title, byline, date, story, story.replace("。", "！").replace(".", "!")])
    result = describe_article(body, (), DescribeHints())
    assert result.metadata.published_at == NOV_14
    assert date not in result.body


def test_a_head_line_of_a_number_a_word_and_a_year_is_no_date() -> None:
    body = ("Council approves the budget\nTop 10 things 2024\nThe council approved the budget on Tuesday "
            "after a long debate, officials said on Wednesday morning.\n")
    result = describe_article(body, (), DescribeHints())
    assert result.metadata.published_at is None
    assert "Top 10 things 2024" in result.body


@pytest.mark.parametrize("text", ["١٤ نوفمبر ٢٠٢٤", "٢٠٢٤-١١-١٤", "۱۴ نوامبر ۲۰۲۴"])
def test_a_date_in_arabic_indic_digits_is_read(text: str) -> None:
    assert parse_date(text, languages=("en", "ar", "fa")) == NOV_14


@pytest.mark.parametrize("lang", ["ja", "zh", "ru"])
def test_a_page_dated_only_by_the_text_of_its_time_element_gets_that_date(lang: str) -> None:
    # htmldate reads no "2024年11月14日" (nor a <time> without a datetime attribute in words it does not
    # know): the page was stored without a date. Through real trafilatura and the whole pipeline.
    title, _, date, story = STORIES[lang]
    assert _page_date(lang, title, f"<time>{date}</time>", story) == NOV_14


def test_a_time_element_of_no_date_dates_nothing() -> None:
    title, _, _, story = STORIES["ru"]
    assert _page_date("ru", title, "<time>5 min read</time>", story) is None


def _page_date(lang: str, title: str, header: str, story: str) -> datetime | None:
    """The published_at the pipeline gives a page with `header` above its article and no date in its head."""
    from newsetl.schemas.records import Article, RawDocument
    from newsetl.text.pipeline import ProcessConfig, make_context, process_document

    page = (f"<html lang='{lang}'><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<header>{header}</header><article><h1>{title}</h1><p>{story}</p><p>{story}</p></article></body></html>")
    doc = RawDocument(doc_id="d1", source_uri="mem://1", kind="html", content_type="html", raw=page.encode(),
                      content=page)
    article = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(article, Article)
    return article.published_at


# A Thai date counts the Buddhist era (2567 = 2024) and an Iranian one the Solar Hijri calendar
# (24 Aban 1403 = 14 November 2024): both dated nothing, the year being read as written.
OTHER_CALENDARS = {
    "th": ("รัฐบาลอนุมัติงบประมาณคมนาคม", "14 พฤศจิกายน 2567",
           "คณะรัฐมนตรีมีมติอนุมัติงบประมาณสำหรับการพัฒนาระบบขนส่งสาธารณะในกรุงเทพมหานครเมื่อวันพฤหัสบดี "
           "โดยรัฐมนตรีกล่าวว่ารถไฟฟ้าสายใหม่จะเปิดให้บริการภายในปีหน้า"),
    "fa": ("تصویب بودجه حمل و نقل عمومی", "۲۴ آبان ۱۴۰۳",
           "شورای شهر روز پنجشنبه پس از بحثی طولانی بودجه جدید حمل و نقل عمومی را تصویب کرد. "
           "شهردار گفت نخستین قطارهای جدید از بهار آینده در خطوط شلوغ شهر حرکت خواهند کرد."),
}


@pytest.mark.parametrize("lang", sorted(OTHER_CALENDARS))
def test_a_date_line_of_another_calendar_dates_the_article_in_the_common_era(lang: str) -> None:
    title, date, story = OTHER_CALENDARS[lang]
    result = describe_article("\n".join([title, date, story, story]), (), DescribeHints())
    assert result.metadata.published_at == NOV_14
    assert date not in result.body
    # a head line in a script without case, over a date line, is the headline
    assert result.metadata.title == title
    assert title not in result.body


def test_a_caseless_first_line_without_a_date_or_byline_under_it_stays_in_the_body() -> None:
    title, _, story = OTHER_CALENDARS["fa"]
    result = describe_article("\n".join([title, story, story]), (), DescribeHints())
    assert result.metadata.title is None
    assert result.body.startswith(title)


@pytest.mark.parametrize(("text", "expected"), [
    ("14 พฤศจิกายน 2567 10:30 น.", datetime(2024, 11, 14, 10, 30, tzinfo=UTC)),
    ("29 กุมภาพันธ์ 2567", datetime(2024, 2, 29, tzinfo=UTC)),  # a leap day of the common era's year
    ("۲۴ آبان ۱۴۰۳ - ۱۰:۳۰", datetime(2024, 11, 14, 10, 30, tzinfo=UTC)),
    ("یکشنبه ۱۶ دي ۱۴۰۳", datetime(2025, 1, 5, tzinfo=UTC)),  # Arabic yeh, a leading weekday
    ("14 November 2567", None),  # no Thai script: no Buddhist era, and too late to be a date
])
def test_other_calendars_are_read_as_the_common_era(text: str, expected: datetime | None) -> None:
    assert parse_date(text, languages=("th", "fa", "en")) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("입력 2024.12.09 10:15", datetime(2024, 12, 9, 10, 15, tzinfo=UTC)),
    ("입력 2024.12.09 10:15 수정 2024.12.10 11:20", datetime(2024, 12, 9, 10, 15, tzinfo=UTC)),
    ("기사입력 2024.12.09. 오후 3:15", datetime(2024, 12, 9, 15, 15, tzinfo=UTC)),
    ("2024년 12월 9일 오전 9:05", datetime(2024, 12, 9, 9, 5, tzinfo=UTC)),
    ("公開日：2024年12月9日（月）10:15", datetime(2024, 12, 9, 10, 15, tzinfo=UTC)),
    ("2024年12月9日 10時15分", datetime(2024, 12, 9, 10, 15, tzinfo=UTC)),
    ("发布时间：2024-12-09 10:15 更新时间：2024-12-10 08:00", datetime(2024, 12, 9, 10, 15, tzinfo=UTC)),
])
def test_chinese_japanese_and_korean_date_lines_are_read(text: str, expected: datetime) -> None:
    # Korean dotted dates, a weekday in brackets, 오후/午後 times and a label glued to the date: each left
    # its line unread (a label and a weekday kept dateparser from the date; "2024.12.09" is no ISO date).
    # With a revision date on the line, the publication one is taken.
    hints = DescribeHints(seen_at=datetime(2025, 1, 1, tzinfo=UTC))
    body = "\n".join(["서울시, 버스·지하철 요금 인상", text, "본문 첫 문장이다. 둘째 문장이다."])
    result = describe_article(body, (), hints)
    assert result.metadata.published_at == expected


@pytest.mark.parametrize(("title", "date_line", "story"), [
    ("国家统计局：11月全国居民消费价格同比上涨0.2%", "2024-12-09 10:15:32 来源：新华网",
     "新华社北京12月9日电（记者 李华）国家统计局9日发布数据显示，11月份，全国居民消费价格指数同比上涨0.2%。"),
    ("서울시, 버스·지하철 요금 인상", "입력 2024.12.09 10:15 수정 2024.12.09 11:20",
     "서울시는 화요일 버스와 지하철 기본요금을 내년 상반기부터 인상하는 방안을 공식 발표했다."),
    ("東京都、給食費を無償化へ", "公開日：2024年12月9日（月）10:15",
     "東京都は3日、来年度から都内の公立小中学校の給食費を無償化する方針を明らかにした。"),
])
def test_a_caseless_headline_over_a_date_line_the_cleaner_took_is_the_title(title: str, date_line: str,
                                                                           story: str) -> None:
    # The cleaner removes the date line (a dateline rule), so the body no longer shows it under the first
    # line; describe knows it from the cleaner's first removal, right under that line.
    text = "\n".join([title, date_line, story, story]) + "\n"
    doc = RawDocument(doc_id="d1", source_uri="mem://1", kind="txt", content_type="text", raw=text.encode(),
                      content=text)
    article = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(article, Article)
    assert article.title == title
    assert article.published_at == datetime(2024, 12, 9, 10, 15, 32 if "32" in date_line else 0, tzinfo=UTC)
    assert not article.body.startswith(title)
