"""Demo data for sampling inspections: a quality standard for the ordinary grade.

Seeded only in demo mode (``make run``). ``ent-c``'s tea licence (``web.demo_royalty``) is
of the ordinary grade, whose standard the office fills in (DOMAIN.md); so that quality
staff can walk an inspection against real dimensions at once, the demo gives that grade
a few, when it has none yet. Idempotent.
"""

from engine import licensing

DEMO_DIMENSIONS = (
    ("外观", "色泽正常，无霉变、无虫蛀、无杂质"),
    ("净含量", "不低于标示值，负偏差符合定量包装商品计量规定"),
    ("水分", "茶叶不高于 7.0%"),
    ("农药残留", "符合 GB 2763 食品中农药最大残留限量"),
)


def seed_inspection_demo():
    grade = licensing.get_grade("ordinary")
    if grade.dimensions:
        return
    for name, requirement in DEMO_DIMENSIONS:
        licensing.add_dimension("ordinary", name, requirement)
