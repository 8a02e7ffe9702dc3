"""Real pooling regions (6-digit administrative division codes) for simulated networks.

The list starts with one region per province, so the first R of it spread across as
many provinces as possible; a few second cities follow. Urumqi (650100) is left out on
purpose: the population generator uses it as the region that is *not* registered.
"""

from __future__ import annotations

from contracts.policy import Policy
from contracts.vocabulary import PaymentOrder, Scope
from gongji.population import RegionSpec

_PLACES: tuple[tuple[str, str, str], ...] = (
    ("110000", "北京市 Beijing", "北京 Beijing"),
    ("310000", "上海市 Shanghai", "上海 Shanghai"),
    ("420100", "武汉市 Wuhan", "湖北 Hubei"),
    ("510100", "成都市 Chengdu", "四川 Sichuan"),
    ("440100", "广州市 Guangzhou", "广东 Guangdong"),
    ("120000", "天津市 Tianjin", "天津 Tianjin"),
    ("130100", "石家庄市 Shijiazhuang", "河北 Hebei"),
    ("320100", "南京市 Nanjing", "江苏 Jiangsu"),
    ("330100", "杭州市 Hangzhou", "浙江 Zhejiang"),
    ("340100", "合肥市 Hefei", "安徽 Anhui"),
    ("370100", "济南市 Jinan", "山东 Shandong"),
    ("410100", "郑州市 Zhengzhou", "河南 Henan"),
    ("430100", "长沙市 Changsha", "湖南 Hunan"),
    ("450100", "南宁市 Nanning", "广西 Guangxi"),
    ("500000", "重庆市 Chongqing", "重庆 Chongqing"),
    ("520100", "贵阳市 Guiyang", "贵州 Guizhou"),
    ("540100", "拉萨市 Lhasa", "西藏 Tibet"),
    ("620100", "兰州市 Lanzhou", "甘肃 Gansu"),
    ("650200", "克拉玛依市 Karamay", "新疆 Xinjiang"),
    ("140100", "太原市 Taiyuan", "山西 Shanxi"),
    ("150100", "呼和浩特市 Hohhot", "内蒙古 Inner Mongolia"),
    ("210100", "沈阳市 Shenyang", "辽宁 Liaoning"),
    ("220100", "长春市 Changchun", "吉林 Jilin"),
    ("230100", "哈尔滨市 Harbin", "黑龙江 Heilongjiang"),
    ("350100", "福州市 Fuzhou", "福建 Fujian"),
    ("360100", "南昌市 Nanchang", "江西 Jiangxi"),
    ("460100", "海口市 Haikou", "海南 Hainan"),
    ("530100", "昆明市 Kunming", "云南 Yunnan"),
    ("610100", "西安市 Xi'an", "陕西 Shaanxi"),
    ("630100", "西宁市 Xining", "青海 Qinghai"),
    ("640100", "银川市 Yinchuan", "宁夏 Ningxia"),
    ("440300", "深圳市 Shenzhen", "广东 Guangdong"),
    ("320500", "苏州市 Suzhou", "江苏 Jiangsu"),
    ("330200", "宁波市 Ningbo", "浙江 Zhejiang"),
    ("370200", "青岛市 Qingdao", "山东 Shandong"),
    ("350200", "厦门市 Xiamen", "福建 Fujian"),
    ("420500", "宜昌市 Yichang", "湖北 Hubei"),
    ("510700", "绵阳市 Mianyang", "四川 Sichuan"),
    ("130200", "唐山市 Tangshan", "河北 Hebei"),
    ("410300", "洛阳市 Luoyang", "河南 Henan"),
    ("440600", "佛山市 Foshan", "广东 Guangdong"),
    ("520300", "遵义市 Zunyi", "贵州 Guizhou"),
)

INITIALLY_DISABLED = frozenset({"110000"})
"""Beijing had not enabled cross-province personal-account mutual aid by 2025-03.

Which regions are enabled is a scenario setting. Here every other region starts enabled,
so most traffic exercises the money path; the ``disable`` fault switches regions off and
on again while the simulation runs.
"""

MAX_REGIONS = len(_PLACES)


def policy_for(index: int) -> Policy:
    """Policies that differ between regions, as they do in the roll-out.

    Every third region spends the co-payer's account first, every fourth still has the
    2021 relationship scope, every fifth has no wallet; the rest keep the defaults.
    """
    return Policy(
        scope=Scope.SCOPE_2021 if index % 4 == 3 else Scope.SCOPE_2024,
        payment_order=PaymentOrder.COPAYER_FIRST if index % 3 == 1 else PaymentOrder.OWN_FIRST,
        wallet_enabled=index % 5 != 4,
    )


def sim_regions(count: int) -> tuple[RegionSpec, ...]:
    """The first ``count`` regions of the list (2 <= count <= ``MAX_REGIONS``)."""
    if not 2 <= count <= MAX_REGIONS:
        raise ValueError(f"a simulation has 2 to {MAX_REGIONS} regions, not {count}")
    return tuple(
        RegionSpec(code, name, province, code not in INITIALLY_DISABLED, policy_for(i))
        for i, (code, name, province) in enumerate(_PLACES[:count])
    )


def province_of(code: str) -> str:
    """The province of a listed region (for counting cross-province transfers)."""
    for listed, _, province in _PLACES:
        if listed == code:
            return province
    return code[:2]
