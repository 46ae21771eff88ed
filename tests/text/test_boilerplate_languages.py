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


# language: the list header of other stories, and the titles under it (a page's tail, as a plain text)
RELATED = {
    "zh": ("相关新闻", ["10月CPI同比上涨0.3%", "前三季度GDP同比增长4.8%", "央行：保持流动性合理充裕"]),
    "ja": ("関連記事", ["都内の保育園、待機児童ゼロに", "大雪で首都圏の交通に乱れ"]),
    "ko": ("관련기사", ["서울 지하철 파업 예고", "버스 노선 개편안 발표"]),
    "ru": ("Читайте также:", ["В Москве открыли новую станцию метро", "Цены на бензин выросли"]),
    "ar": ("أخبار ذات صلة", ["ارتفاع أسعار النفط", "افتتاح معرض الكتاب"]),
    "hi": ("ये भी पढ़ें", ["मुंबई में भारी बारिश", "दिल्ली मेट्रो का नया रूट"]),
    "th": ("ข่าวที่เกี่ยวข้อง", ["ฝนตกหนักในกรุงเทพฯ", "ราคาน้ำมันปรับขึ้น"]),
    "vi": ("Tin liên quan", ["Hà Nội mở thêm tuyến xe buýt điện", "Giá xăng tăng nhẹ"]),
}
STORY_JA = ["東京都は3日、来年度から都内の公立小中学校の給食費を無償化する方針を明らかにした。",
            "小池百合子知事は記者会見で「子育て世帯の負担を軽減したい」と述べ、関連予算を来年度予算案に盛り込む考えを示した。"]
# Thai ends a sentence with no mark: its story lines are long phrases run together
STORY_TH = ["กระทรวงการคลังเปิดเผยว่า เศรษฐกิจไทยในไตรมาสที่สามขยายตัวร้อยละสามจุดศูนย์ สูงกว่าที่นักวิเคราะห์คาดการณ์ไว้ "
            "โดยได้แรงหนุนจากการท่องเที่ยวและการส่งออกที่ฟื้นตัวอย่างต่อเนื่อง",
            "รัฐมนตรีว่าการกระทรวงการคลังกล่าวว่า รัฐบาลจะเร่งการเบิกจ่ายงบประมาณในไตรมาสสุดท้าย "
            "เพื่อให้เศรษฐกิจทั้งปีขยายตัวได้ตามเป้าหมายที่วางไว้"]
STORY_VI = ["Ủy ban nhân dân thành phố Hà Nội hôm thứ Ba đã phê duyệt kế hoạch mở rộng mạng lưới xe buýt điện "
            "trong nội thành giai đoạn đến năm 2030.",
            "Theo kế hoạch, thành phố sẽ đầu tư thêm khoảng năm trăm xe buýt điện mới trong ba năm tới."]


def _story_of(lang: str) -> list[str]:
    return {"ja": STORY_JA, "th": STORY_TH, "vi": STORY_VI}.get(lang) or CASES[lang][0]


@pytest.mark.parametrize("lang", sorted(RELATED))
def test_a_list_header_of_other_stories_goes_with_the_titles_under_it(lang: str) -> None:
    # The bare header ("相关新闻", "Читайте также:") over a list of other stories' titles is
    # related.header's kind in English; in these languages both the header and its titles stayed.
    header, titles = RELATED[lang]
    story = _story_of(lang)
    article = _article("\n".join([*story, header, *titles]) + "\n", "text")
    for line in story:
        assert line in article.body
    for line in [header, *titles]:
        assert line not in article.body, f"{lang}: {line!r} stayed"
    assert {r.category for r in article.removals} >= {"related_links"}


@pytest.mark.parametrize("lang", ["zh", "ja", "th"])
def test_the_header_stops_at_the_next_paragraph(lang: str) -> None:
    # A paragraph of a script without spaces is one whitespace "word": it must not pass for a link title
    # under the header (the block would take the story below it).
    header, titles = RELATED[lang]
    story = _story_of(lang)
    article = _article("\n".join([story[0], header, titles[0], *story[1:]]) + "\n", "text")
    assert titles[0] not in article.body
    for line in story:
        assert line in article.body


def test_a_chinese_pages_furniture_goes_and_its_story_stays() -> None:
    # The tail of a Chinese news page as scrapers hand it over: a share bar, a follow prompt with a QR
    # code, the page's print/close/report-an-error controls, the bracketed editor credit, a reprint notice.
    story = ["新华社北京12月9日电（记者 李华）国家统计局9日发布数据显示，11月份，全国居民消费价格指数同比上涨0.2%，"
             "涨幅比上月回落0.1个百分点。",
             "其中，城市上涨0.2%，农村上涨0.1%；食品价格上涨1.0%，非食品价格持平。",
             "“从同比看，CPI上涨0.2%，涨幅比上月回落0.1个百分点。”她说。"]
    furniture = ["分享到：微信 微博 QQ空间", "扫一扫，关注新华网微信公众号", "【打印】 【关闭窗口】",
                 "【纠错】 【责任编辑：王小明】", "本文为新华网原创，未经授权不得转载。"]
    text = "\n".join([furniture[0], *story, *furniture[1:]]) + "\n"
    article = _article(text, "text")
    for line in story:
        assert line in article.body
    for line in furniture:
        assert line not in article.body, f"{line!r} stayed"
    assert {r.category for r in article.removals} >= {"share_social", "navigation", "credit", "copyright"}


# The furniture of Chinese, Japanese, Korean, Russian and Arabic pages, one line at a time under a story
# of its language, with the category it goes under.
FURNITURE = [
    ("ko", "홍길동 기자 gildong@yna.co.kr", "credit"),
    ("ko", "기사제보 및 보도자료 press@example.co.kr", "contact_prompt"),
    ("ko", "<ⓒ 한국경제TV, 무단 전재 및 재배포 금지>", "copyright"),
    ("ko", "네이버 뉴스 구독하기", "newsletter"),
    ("ko", "좋아요 0 훈훈해요 0 슬퍼요 0 화나요 0 후속기사 원해요 0", "share_social"),
    ("ko", "이 기사를 추천합니다", "share_social"),
    ("ko", "댓글 0", "comments"),
    ("ko", "입력 2024.12.09 10:15 수정 2024.12.09 11:20", "dateline"),
    ("ja", "この記事の写真（3枚）", "navigation"),
    ("ja", "【関連記事】", "related_links"),
    ("ja", "続きを読む", "related_links"),
    ("ja", "前へ 次へ", "navigation"),
    ("ja", "この記事をシェアする", "share_social"),
    ("ja", "ニュースレターの登録はこちら", "newsletter"),
    ("ja", "（共同通信）", "credit"),
    ("ru", "Источник: ТАСС", "credit"),
    ("ru", "Нашли ошибку? Выделите текст и нажмите Ctrl+Enter", "contact_prompt"),
    ("ru", "Поделиться:", "share_social"),
    ("ar", "شارك هذا المقال", "share_social"),
    ("ar", "تابعونا على فيسبوك", "share_social"),
    ("ar", "المصدر: وكالات", "credit"),
    ("ar", "الوسوم: الصحة، التطعيم", "navigation"),
    ("zh", "（完）", "markup"),
    ("zh", "本文来源：人民日报", "credit"),
    ("zh", "责编：李娜", "credit"),
    ("zh", "（编辑 王明）", "credit"),
    ("zh", "点击进入专题", "related_links"),
    ("zh", "更多精彩内容请关注", "share_social"),
    ("zh", "声明：本文仅代表作者观点，不代表本站立场。", "copyright"),
    ("zh", "上一篇：北京发布新规", "related_links"),
]


@pytest.mark.parametrize(("lang", "line", "category"), FURNITURE)
def test_a_pages_furniture_line_goes_under_its_category(lang: str, line: str, category: str) -> None:
    story = _story_of(lang)
    article = _article("\n".join([*story, line]) + "\n", "text")
    for s in story:
        assert s in article.body
    assert line not in article.body
    assert [r.category for r in article.removals if r.text.strip() == line] == [category]


# Story sentences that hold the same words as the furniture above: they stay.
STORY_WITH_CUES = [
    ("ko", "다음 달부터 버스 요금이 인상되며, 이전 정부의 정책을 이어받은 조치라고 시는 설명했다."),
    ("ko", "구독자 수가 지난해보다 두 배 늘었다고 회사 측은 밝혔다."),
    ("zh", "外交部发言人在声明中表示，中方对此表示强烈不满，并已向对方提出严正交涉。"),
    ("zh", "法院认定，该网站未经授权转载了原告的多篇文章，判令其赔偿经济损失五万元。"),
    ("zh", "专家呼吁社会各界关注留守儿童的心理健康问题，并提供更多支持。"),
    ("ru", "Источник в правительстве сообщил журналистам, что решение будет принято до конца недели."),
    ("ja", "関連記事によると、政府は来年度予算案に子育て支援の費用を盛り込む方針だという。"),
]


@pytest.mark.parametrize(("lang", "line"), STORY_WITH_CUES)
def test_story_sentences_with_the_furnitures_words_stay(lang: str, line: str) -> None:
    story = _story_of(lang)
    article = _article("\n".join([story[0], line, *story[1:]]) + "\n", "text")
    assert line in article.body
