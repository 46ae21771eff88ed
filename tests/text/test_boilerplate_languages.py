"""Share, newsletter, photo-credit, comments and read-also lines in the languages news comes in are
boilerplate like their English counterparts (user trial 9): they stayed in the bodies of Russian, Arabic,
Hindi, Korean, Chinese ... pages and plain texts, where the library knew only their English (and a few
European) forms. The story around them stays."""

from __future__ import annotations

import pytest

from newsetl.schemas.records import Article, RawDocument
from newsetl.text.pipeline import ProcessConfig, make_context, process_document

# language: two story paragraphs, then share, subscribe, photo credit, read-also and comments lines
CASES = {
    "ru": (["Депутаты городского совета в четверг большинством голосов утвердили бюджет на развитие "
            "общественного транспорта на ближайшие три года, сообщили в мэрии.",
            "Мэр города заявил журналистам, что первые двадцать низкопольных трамваев выйдут на линии уже "
            "весной следующего года."],
           ["Поделиться в ВКонтакте", "Подписывайтесь на наш канал в Telegram", "Фото: Иван Петров / ТАСС"]),
    "ar": (["أعلنت وزارة الصحة يوم الأحد عن إطلاق حملة وطنية واسعة للتطعيم ضد الحصبة تستهدف أكثر من مليوني "
            "طالب في المدارس الحكومية والخاصة.",
            "وقال المتحدث باسم الوزارة في مؤتمر صحفي إن الحملة ستستمر لمدة ثلاثة أسابيع في جميع المحافظات."],
           ["شارك على فيسبوك", "اشترك في نشرتنا البريدية", "تصوير: أحمد علي"]),
    "hi": (["दिल्ली सरकार ने सोमवार को राजधानी में बढ़ते वायु प्रदूषण से निपटने के लिए एक व्यापक योजना की "
            "घोषणा की, जिसके तहत निर्माण कार्यों पर सख्त निगरानी रखी जाएगी।",
            "पर्यावरण मंत्री ने संवाददाताओं से कहा कि शहर के सभी प्रमुख चौराहों पर पानी का छिड़काव करने वाली "
            "मशीनें तैनात की जाएंगी।"],
           ["फेसबुक पर शेयर करें", "हमारे न्यूज़लेटर की सदस्यता लें", "फोटो: पीटीआई", "यह भी पढ़ें: मुंबई में भारी बारिश"]),
    "ko": (["서울시는 화요일 버스와 지하철 기본요금을 내년 상반기부터 인상하는 방안을 공식 발표했다. 이번 조정은 팔 년 "
            "만에 처음 이뤄지는 것이다.",
            "시 관계자는 기자회견에서 운영 적자가 수년째 누적되고 있어 요금 조정이 불가피하다고 설명했다."],
           ["페이스북 공유", "뉴스레터 구독하기", "사진: 연합뉴스"]),
    "zh": (["上海市政府周三发布新一轮城市更新行动计划，提出在未来五年内改造中心城区约五百万平方米的老旧住房。",
            "市住房和城乡建设管理委员会负责人在新闻发布会上表示，此次更新将重点保护历史风貌街区。"],
           ["分享到微信", "订阅我们的新闻简报", "图片来源：新华社"]),
    "tr": (["İstanbul Büyükşehir Belediyesi, Kadıköy ile Ataşehir arasında yolcu taşıyacak yeni metro hattını "
            "Çarşamba günü düzenlenen törenle hizmete açtı.",
            "Belediye başkanı, günde yaklaşık üç yüz bin yolcunun yeni hattı kullanmasının beklendiğini söyledi."],
           ["Facebook'ta paylaş", "Bültenimize abone olun", "Fotoğraf: AA", "İlgili Haber: Ankara'da kar yağışı"]),
    "de": (["Der Stadtrat hat am Donnerstag mit großer Mehrheit ein neues Radwegenetz für die Innenstadt "
            "beschlossen, bis 2027 sollen vierzig Kilometer entstehen.",
            "Kritik kam von Einzelhändlern, die den Wegfall von Parkplätzen in der Innenstadt fürchten."],
           ["Auf Facebook teilen"]),
}
COMMENTS = {"ar": "التعليقات", "hi": "टिप्पणियाँ", "ko": "댓글", "zh": "评论"}


def _article(content: str, content_type: str) -> Article:
    doc = RawDocument(doc_id="d1", source_uri="mem://1", kind="txt" if content_type == "text" else "html",
                      content_type=content_type, raw=content.encode(), content=content)
    out = process_document(doc, make_context(ProcessConfig()))
    assert isinstance(out, Article)
    return out


@pytest.mark.parametrize("lang", sorted(CASES))
def test_a_plain_texts_boilerplate_lines_go_and_its_story_stays(lang: str) -> None:
    story, boiler = CASES[lang]
    tail = [COMMENTS[lang]] if lang in COMMENTS else []
    article = _article("\n".join([story[0], boiler[0], story[1], *boiler[1:], *tail]) + "\n", "text")
    for line in story:
        assert line in article.body
    for line in [*boiler, *tail]:
        assert line not in article.body, f"{lang}: {line!r} stayed"


@pytest.mark.parametrize("lang", sorted(CASES))
def test_a_pages_boilerplate_paragraphs_go_through_trafilatura(lang: str) -> None:
    story, boiler = CASES[lang]
    paras = "".join(f"<p>{p}</p>" for p in [story[0], *boiler, story[1]])
    page = (f"<html lang='{lang}'><head><meta charset='utf-8'><title>t</title></head><body><article>"
            f"{paras}</article></body></html>")
    article = _article(page, "html")
    for line in story:
        assert line in article.body
    for line in boiler:
        assert line not in article.body, f"{lang}: {line!r} stayed"
