"""The ``national`` scenario's regions: every pooling region of the 17 provinces that had
enabled cross-province sharing of personal accounts by 2025-03-16, as GB/T 2260 codes.

``python -m gongji.scenario.national`` writes ``gongji/scenarios/national.toml`` from the
table below (the file is committed; ``tests/scenario/test_national.py`` checks it is this
module's output). Which regions are enabled and which run the wallet is a documented
choice (``docs/calibration.md``): the published figures give counts, not lists.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from gongji.scenario.loader import SCENARIO_DIR

NATIONAL_SCENARIO_PATH = SCENARIO_DIR / "national.toml"

ENABLED_REGIONS = 146
ENABLED_PROVINCES = 17
WALLET_REGIONS = 117
WALLET_PROVINCES = 14
WALLET_PROVINCE_WIDE = 6


@dataclass(frozen=True, slots=True)
class Province:
    """A province of the roll-out, its pooling regions in listing order (capital first),
    and how many of the first of them are enabled and run the wallet."""

    label: str
    enabled: int
    wallet: int
    regions: tuple[tuple[str, str], ...]
    """(code, "中文 Name")."""


PROVINCES: tuple[Province, ...] = (
    Province("天津 Tianjin", 1, 1, (("120000", "天津市 Tianjin"),)),
    Province("上海 Shanghai", 1, 1, (("310000", "上海市 Shanghai"),)),
    Province("重庆 Chongqing", 1, 1, (("500000", "重庆市 Chongqing"),)),
    Province(
        "河北 Hebei",
        11,
        8,
        (
            ("130100", "石家庄市 Shijiazhuang"),
            ("130200", "唐山市 Tangshan"),
            ("130300", "秦皇岛市 Qinhuangdao"),
            ("130400", "邯郸市 Handan"),
            ("130500", "邢台市 Xingtai"),
            ("130600", "保定市 Baoding"),
            ("130700", "张家口市 Zhangjiakou"),
            ("130800", "承德市 Chengde"),
            ("130900", "沧州市 Cangzhou"),
            ("131000", "廊坊市 Langfang"),
            ("131100", "衡水市 Hengshui"),
        ),
    ),
    Province(
        "江苏 Jiangsu",
        13,
        13,
        (
            ("320100", "南京市 Nanjing"),
            ("320200", "无锡市 Wuxi"),
            ("320300", "徐州市 Xuzhou"),
            ("320400", "常州市 Changzhou"),
            ("320500", "苏州市 Suzhou"),
            ("320600", "南通市 Nantong"),
            ("320700", "连云港市 Lianyungang"),
            ("320800", "淮安市 Huai'an"),
            ("320900", "盐城市 Yancheng"),
            ("321000", "扬州市 Yangzhou"),
            ("321100", "镇江市 Zhenjiang"),
            ("321200", "泰州市 Taizhou"),
            ("321300", "宿迁市 Suqian"),
        ),
    ),
    Province(
        "安徽 Anhui",
        16,
        12,
        (
            ("340100", "合肥市 Hefei"),
            ("340200", "芜湖市 Wuhu"),
            ("340300", "蚌埠市 Bengbu"),
            ("340400", "淮南市 Huainan"),
            ("340500", "马鞍山市 Ma'anshan"),
            ("340600", "淮北市 Huaibei"),
            ("340700", "铜陵市 Tongling"),
            ("340800", "安庆市 Anqing"),
            ("341000", "黄山市 Huangshan"),
            ("341100", "滁州市 Chuzhou"),
            ("341200", "阜阳市 Fuyang"),
            ("341300", "宿州市 Suzhou (Anhui)"),
            ("341500", "六安市 Lu'an"),
            ("341600", "亳州市 Bozhou"),
            ("341700", "池州市 Chizhou"),
            ("341800", "宣城市 Xuancheng"),
        ),
    ),
    Province(
        "山东 Shandong",
        16,
        16,
        (
            ("370100", "济南市 Jinan"),
            ("370200", "青岛市 Qingdao"),
            ("370300", "淄博市 Zibo"),
            ("370400", "枣庄市 Zaozhuang"),
            ("370500", "东营市 Dongying"),
            ("370600", "烟台市 Yantai"),
            ("370700", "潍坊市 Weifang"),
            ("370800", "济宁市 Jining"),
            ("370900", "泰安市 Tai'an"),
            ("371000", "威海市 Weihai"),
            ("371100", "日照市 Rizhao"),
            ("371300", "临沂市 Linyi"),
            ("371400", "德州市 Dezhou"),
            ("371500", "聊城市 Liaocheng"),
            ("371600", "滨州市 Binzhou"),
            ("371700", "菏泽市 Heze"),
        ),
    ),
    Province(
        "河南 Henan",
        18,
        12,
        (
            ("410100", "郑州市 Zhengzhou"),
            ("410200", "开封市 Kaifeng"),
            ("410300", "洛阳市 Luoyang"),
            ("410400", "平顶山市 Pingdingshan"),
            ("410500", "安阳市 Anyang"),
            ("410600", "鹤壁市 Hebi"),
            ("410700", "新乡市 Xinxiang"),
            ("410800", "焦作市 Jiaozuo"),
            ("410900", "濮阳市 Puyang"),
            ("411000", "许昌市 Xuchang"),
            ("411100", "漯河市 Luohe"),
            ("411200", "三门峡市 Sanmenxia"),
            ("411300", "南阳市 Nanyang"),
            ("411400", "商丘市 Shangqiu"),
            ("411500", "信阳市 Xinyang"),
            ("411600", "周口市 Zhoukou"),
            ("411700", "驻马店市 Zhumadian"),
            ("419001", "济源市 Jiyuan"),
        ),
    ),
    Province(
        "湖北 Hubei",
        17,
        12,
        (
            ("420100", "武汉市 Wuhan"),
            ("420200", "黄石市 Huangshi"),
            ("420300", "十堰市 Shiyan"),
            ("420500", "宜昌市 Yichang"),
            ("420600", "襄阳市 Xiangyang"),
            ("420700", "鄂州市 Ezhou"),
            ("420800", "荆门市 Jingmen"),
            ("420900", "孝感市 Xiaogan"),
            ("421000", "荆州市 Jingzhou"),
            ("421100", "黄冈市 Huanggang"),
            ("421200", "咸宁市 Xianning"),
            ("421300", "随州市 Suizhou"),
            ("422800", "恩施土家族苗族自治州 Enshi"),
            ("429004", "仙桃市 Xiantao"),
            ("429005", "潜江市 Qianjiang"),
            ("429006", "天门市 Tianmen"),
            ("429021", "神农架林区 Shennongjia"),
        ),
    ),
    Province(
        "广东 Guangdong",
        21,
        21,
        (
            ("440100", "广州市 Guangzhou"),
            ("440200", "韶关市 Shaoguan"),
            ("440300", "深圳市 Shenzhen"),
            ("440400", "珠海市 Zhuhai"),
            ("440500", "汕头市 Shantou"),
            ("440600", "佛山市 Foshan"),
            ("440700", "江门市 Jiangmen"),
            ("440800", "湛江市 Zhanjiang"),
            ("440900", "茂名市 Maoming"),
            ("441200", "肇庆市 Zhaoqing"),
            ("441300", "惠州市 Huizhou"),
            ("441400", "梅州市 Meizhou"),
            ("441500", "汕尾市 Shanwei"),
            ("441600", "河源市 Heyuan"),
            ("441700", "阳江市 Yangjiang"),
            ("441800", "清远市 Qingyuan"),
            ("441900", "东莞市 Dongguan"),
            ("442000", "中山市 Zhongshan"),
            ("445100", "潮州市 Chaozhou"),
            ("445200", "揭阳市 Jieyang"),
            ("445300", "云浮市 Yunfu"),
        ),
    ),
    Province(
        "广西 Guangxi",
        5,
        4,
        (
            ("450100", "南宁市 Nanning"),
            ("450200", "柳州市 Liuzhou"),
            ("450300", "桂林市 Guilin"),
            ("450400", "梧州市 Wuzhou"),
            ("450500", "北海市 Beihai"),
            ("450600", "防城港市 Fangchenggang"),
            ("450700", "钦州市 Qinzhou"),
            ("450800", "贵港市 Guigang"),
            ("450900", "玉林市 Yulin"),
            ("451000", "百色市 Baise"),
            ("451100", "贺州市 Hezhou"),
            ("451200", "河池市 Hechi"),
            ("451300", "来宾市 Laibin"),
            ("451400", "崇左市 Chongzuo"),
        ),
    ),
    Province(
        "四川 Sichuan",
        10,
        8,
        (
            ("510100", "成都市 Chengdu"),
            ("510300", "自贡市 Zigong"),
            ("510400", "攀枝花市 Panzhihua"),
            ("510500", "泸州市 Luzhou"),
            ("510600", "德阳市 Deyang"),
            ("510700", "绵阳市 Mianyang"),
            ("510800", "广元市 Guangyuan"),
            ("510900", "遂宁市 Suining"),
            ("511000", "内江市 Neijiang"),
            ("511100", "乐山市 Leshan"),
            ("511300", "南充市 Nanchong"),
            ("511400", "眉山市 Meishan"),
            ("511500", "宜宾市 Yibin"),
            ("511600", "广安市 Guang'an"),
            ("511700", "达州市 Dazhou"),
            ("511800", "雅安市 Ya'an"),
            ("511900", "巴中市 Bazhong"),
            ("512000", "资阳市 Ziyang"),
            ("513200", "阿坝藏族羌族自治州 Ngawa"),
            ("513300", "甘孜藏族自治州 Garzê"),
            ("513400", "凉山彝族自治州 Liangshan"),
        ),
    ),
    Province(
        "贵州 Guizhou",
        4,
        4,
        (
            ("520100", "贵阳市 Guiyang"),
            ("520200", "六盘水市 Liupanshui"),
            ("520300", "遵义市 Zunyi"),
            ("520400", "安顺市 Anshun"),
            ("520500", "毕节市 Bijie"),
            ("520600", "铜仁市 Tongren"),
            ("522300", "黔西南布依族苗族自治州 Qianxinan"),
            ("522600", "黔东南苗族侗族自治州 Qiandongnan"),
            ("522700", "黔南布依族苗族自治州 Qiannan"),
        ),
    ),
    Province(
        "西藏 Tibet",
        2,
        0,
        (
            ("540100", "拉萨市 Lhasa"),
            ("540200", "日喀则市 Shigatse"),
            ("540300", "昌都市 Chamdo"),
            ("540400", "林芝市 Nyingchi"),
            ("540500", "山南市 Shannan"),
            ("540600", "那曲市 Nagqu"),
            ("542500", "阿里地区 Ngari"),
        ),
    ),
    Province(
        "甘肃 Gansu",
        4,
        4,
        (
            ("620100", "兰州市 Lanzhou"),
            ("620200", "嘉峪关市 Jiayuguan"),
            ("620300", "金昌市 Jinchang"),
            ("620400", "白银市 Baiyin"),
            ("620500", "天水市 Tianshui"),
            ("620600", "武威市 Wuwei"),
            ("620700", "张掖市 Zhangye"),
            ("620800", "平凉市 Pingliang"),
            ("620900", "酒泉市 Jiuquan"),
            ("621000", "庆阳市 Qingyang"),
            ("621100", "定西市 Dingxi"),
            ("621200", "陇南市 Longnan"),
            ("622900", "临夏回族自治州 Linxia"),
            ("623000", "甘南藏族自治州 Gannan"),
        ),
    ),
    Province(
        "新疆 Xinjiang",
        4,
        0,
        (
            ("650100", "乌鲁木齐市 Ürümqi"),
            ("650200", "克拉玛依市 Karamay"),
            ("650400", "吐鲁番市 Turpan"),
            ("650500", "哈密市 Hami"),
            ("652300", "昌吉回族自治州 Changji"),
            ("652700", "博尔塔拉蒙古自治州 Bortala"),
            ("652800", "巴音郭楞蒙古自治州 Bayingolin"),
            ("652900", "阿克苏地区 Aksu"),
            ("653000", "克孜勒苏柯尔克孜自治州 Kizilsu"),
            ("653100", "喀什地区 Kashgar"),
            ("653200", "和田地区 Hotan"),
            ("654000", "伊犁哈萨克自治州 Ili"),
            ("654200", "塔城地区 Tacheng"),
            ("654300", "阿勒泰地区 Altay"),
        ),
    ),
    Province(
        "新疆生产建设兵团 XPCC",
        2,
        0,
        (
            ("659001", "石河子市 Shihezi"),
            ("659002", "阿拉尔市 Aral"),
            ("659003", "图木舒克市 Tumxuk"),
            ("659004", "五家渠市 Wujiaqu"),
            ("659005", "北屯市 Beitun"),
            ("659006", "铁门关市 Tiemenguan"),
            ("659007", "双河市 Shuanghe"),
            ("659008", "可克达拉市 Kokdala"),
            ("659009", "昆玉市 Kunyu"),
            ("659010", "胡杨河市 Huyanghe"),
            ("659011", "新星市 Xinxing"),
        ),
    ),
)

REGION_COUNT = sum(len(p.regions) for p in PROVINCES)

UNREGISTERED_REGION = "150100"
"""Hohhot: a real code outside the 17 provinces, the population's unregistered region."""

_HEADER = """\
# The national roll-out (generated by `python -m gongji.scenario.national`; edit that
# module, not this file). Keys: gongji/scenarios/README.md; sources: docs/calibration.md.
#
# Every pooling region of the 17 provinces (省级单位) that had enabled cross-province
# sharing of personal accounts by 2025-03-16: {regions} GB/T 2260 codes, 146 of them enabled.
# The 17 are Tianjin, Hebei, Shanghai, Jiangsu, Anhui, Shandong, Henan, Hubei, Guangdong,
# Guangxi, Chongqing, Sichuan, Guizhou, Tibet, Gansu, Xinjiang and the Xinjiang
# Production and Construction Corps (兵团, its division cities as regions).
# The wallet (医保钱包) runs in 117 enabled regions of 14 provinces, 6 of them
# province-wide (Tianjin, Shanghai, Chongqing, Jiangsu, Shandong, Guangdong), as of
# 2025-02-04. Which regions of a province come first is our choice (the capital, then
# GB/T 2260 order): the sources give counts only.
"""


def _region_block(code: str, name: str, province: str, enabled: bool, wallet: bool) -> str:
    return (
        "[[regions]]\n"
        f'code = "{code}"\n'
        f'name = "{name}"\n'
        f'province = "{province}"\n'
        f"enabled = {'true' if enabled else 'false'}\n"
        f"wallet_enabled = {'true' if wallet else 'false'}\n"
    )


_POPULATION = f"""\
[population]
# Few persons a region, so that {REGION_COUNT} regions load and simulate in seconds; every
# number below and its source: docs/calibration.md.
persons_per_region = 12
insurance_mix = {{ employee = 0.3, resident = 0.65, none = 0.05 }}
zero_balance_share = 0.1
short_balance_share = 0.2
short_balance_max_fen = 10000
balance_fen = {{ min = 10000, max = 1070000 }}
beneficiary_share = 0.75
bindings_per_beneficiary = {{ 1 = 0.6, 2 = 0.3, 3 = 0.1 }}
cross_region_share = 0.8
unregistered_copayer_share = 0.01
unregistered_region = "{UNREGISTERED_REGION}"

# Co-payers working in Guangdong, Jiangsu, Shanghai, Tianjin, Shandong for families at
# home in Henan, Sichuan, Anhui, Guizhou, Guangxi, Chongqing, Hubei (Zhejiang, Beijing
# and Hunan are not among the 17 provinces).
[population.migration]
share = 0.7
work = ["44", "32", "31", "12", "37"]
home = ["41", "51", "34", "52", "45", "50", "42"]

[bills]
count = 600
amount_fen = {{ min = 1000, max = 26000 }}
wallet_transfers = 60
wallet_amount_fen = {{ min = 10000, max = 126000 }}
premium_payments = 30
binding_requests = 30

[calibration]
wallet_amount_fen = 68000
premium_money_share = 0.171
flow_shares = {{ copay = 0.6, wallet = 0.2, premium = 0.1, binding = 0.1 }}
bills_paid = {{ full = 0.55, part = 0.15, refused = 0.3 }}
"""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render() -> str:
    """The text of ``national.toml``."""
    blocks = [_HEADER.format(regions=REGION_COUNT)]
    for province in PROVINCES:
        enabled = min(province.enabled, len(province.regions))
        blocks.append(
            f"# --- {province.label}: {_count(len(province.regions), 'region')}, {enabled} enabled,"
            f" {province.wallet} with the wallet ---\n"
        )
        for i, (code, name) in enumerate(province.regions):
            blocks.append(
                _region_block(code, name, province.label, i < province.enabled, i < province.wallet)
            )
    blocks.append(_POPULATION)
    return "\n".join(blocks)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else NATIONAL_SCENARIO_PATH
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
