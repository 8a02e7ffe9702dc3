"""The pooling regions a local cluster is made of: real codes, first the demo's five.

``--regions N`` takes the first N. Provincial capitals (and a few large cities, so that
some provinces have two regions and same-province co-payments exist) make up 35.
"""

from __future__ import annotations

from collections.abc import Sequence

from gongji.population import DEMO_REGIONS, UNREGISTERED_REGION, RegionSpec


def _r(code: str, name: str, province: str) -> RegionSpec:
    return RegionSpec(code, name, province, True)


CATALOG: tuple[RegionSpec, ...] = (
    # The demo's regions first, Beijing (not enabled by 2025-03) fifth, so that a
    # four-region cluster is all enabled and a five-region one shows a refusal.
    DEMO_REGIONS[1],  # Shanghai
    DEMO_REGIONS[2],  # Wuhan
    DEMO_REGIONS[3],  # Chengdu
    DEMO_REGIONS[4],  # Guangzhou
    DEMO_REGIONS[0],  # Beijing, not enabled
    _r("440300", "深圳市 Shenzhen", "广东 Guangdong"),
    _r("320100", "南京市 Nanjing", "江苏 Jiangsu"),
    _r("330100", "杭州市 Hangzhou", "浙江 Zhejiang"),
    _r("120000", "天津市 Tianjin", "天津 Tianjin"),
    _r("500000", "重庆市 Chongqing", "重庆 Chongqing"),
    _r("130100", "石家庄市 Shijiazhuang", "河北 Hebei"),
    _r("140100", "太原市 Taiyuan", "山西 Shanxi"),
    _r("150100", "呼和浩特市 Hohhot", "内蒙古 Inner Mongolia"),
    _r("210100", "沈阳市 Shenyang", "辽宁 Liaoning"),
    _r("220100", "长春市 Changchun", "吉林 Jilin"),
    _r("230100", "哈尔滨市 Harbin", "黑龙江 Heilongjiang"),
    _r("340100", "合肥市 Hefei", "安徽 Anhui"),
    _r("350100", "福州市 Fuzhou", "福建 Fujian"),
    _r("360100", "南昌市 Nanchang", "江西 Jiangxi"),
    _r("370100", "济南市 Jinan", "山东 Shandong"),
    _r("410100", "郑州市 Zhengzhou", "河南 Henan"),
    _r("430100", "长沙市 Changsha", "湖南 Hunan"),
    _r("450100", "南宁市 Nanning", "广西 Guangxi"),
    _r("460100", "海口市 Haikou", "海南 Hainan"),
    _r("520100", "贵阳市 Guiyang", "贵州 Guizhou"),
    _r("530100", "昆明市 Kunming", "云南 Yunnan"),
    _r("540100", "拉萨市 Lhasa", "西藏 Tibet"),
    _r("610100", "西安市 Xi'an", "陕西 Shaanxi"),
    _r("620100", "兰州市 Lanzhou", "甘肃 Gansu"),
    _r("630100", "西宁市 Xining", "青海 Qinghai"),
    _r("640100", "银川市 Yinchuan", "宁夏 Ningxia"),
    _r("330200", "宁波市 Ningbo", "浙江 Zhejiang"),
    _r("370200", "青岛市 Qingdao", "山东 Shandong"),
    _r("210200", "大连市 Dalian", "辽宁 Liaoning"),
    _r("350200", "厦门市 Xiamen", "福建 Fujian"),
)

assert UNREGISTERED_REGION not in {r.code for r in CATALOG}
assert len({r.code for r in CATALOG}) == len(CATALOG)


class UnknownRegion(ValueError):
    """A region code that the catalog does not list."""


def first_regions(count: int) -> tuple[RegionSpec, ...]:
    """The first ``count`` regions of the catalog."""
    if not 1 <= count <= len(CATALOG):
        raise ValueError(f"a local cluster has 1..{len(CATALOG)} regions, not {count}")
    return CATALOG[:count]


def regions_by_code(codes: Sequence[str]) -> tuple[RegionSpec, ...]:
    """The catalog entries of ``codes``, in that order."""
    known = {r.code: r for r in CATALOG}
    missing = [c for c in codes if c not in known]
    if missing:
        raise UnknownRegion(
            f"region codes not in the local catalog: {', '.join(missing)} "
            f"(known: {', '.join(sorted(known))})"
        )
    if len(set(codes)) != len(codes):
        raise ValueError("a region code is listed twice")
    return tuple(known[c] for c in codes)


def with_enabled(regions: Sequence[RegionSpec], enabled: bool | None) -> tuple[RegionSpec, ...]:
    """``regions`` with every one enabled (True), disabled (False) or as listed (None)."""
    if enabled is None:
        return tuple(regions)
    return tuple(RegionSpec(r.code, r.name, r.province, enabled) for r in regions)
