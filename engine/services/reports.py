"""Publishing the figures: the monthly report as XLSX with native Excel charts, charts as SVG, CSV.

Everything here renders what `engine.services.statistics` and `engine.services.assessment`
computed; no figure is computed here. The XLSX workbook (openpyxl) has a cover sheet shaped
like the seed reports (受理, 办结, 办结率, 社区办结 and its share, 满意 and its share, 督办; then the
lights, refusals, transfers and co-handled cases),
one sheet per grouping, the assessment ranking and the monthly trend, with bar and line
charts Excel draws itself. The same charts are rendered as self-contained SVG (pygal, no
script and no external asset) for the web console.
"""
from __future__ import annotations

import csv
import io
from datetime import date

import pygal
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from engine import clock
from engine.services import assessment as assess
from engine.services import statistics as st

GROUP_SHEETS = {"unit": "按单位", "category": "按类别", "channel": "按渠道", "level": "按层级", "community": "按社区"}
COLUMNS = [  # (figure key, header)
    ("accepted", "受理"), ("completed", "办结"), ("completion_rate", "办结率"),
    ("satisfaction_rate", "满意率"), ("on_time_sign_for_rate", "签收及时率"),
    ("on_time_handling_rate", "办理及时率"), ("yellow_lights", "黄灯"), ("red_lights", "红灯"),
    ("supervised", "督办"), ("reopened", "不满意返工"), ("refusals", "拒收退回"), ("transfers", "转办"),
    ("co_handled", "协办"),
]
RATE_FORMAT = "0.0%"
TREND_MONTHS = 12
CHART_STYLE = dict(js=[], disable_xml_declaration=True, width=800, height=400, explicit_size=True,
                   print_values=False, legend_at_bottom=True)


def _months_back(month: str, n: int) -> list[str]:
    year, m = int(month[:4]), int(month[5:])
    out = []
    for _ in range(n):
        out.append(f"{year}-{m:02d}")
        year, m = (year - 1, 12) if m == 1 else (year, m - 1)
    return list(reversed(out))


def trend(rt, user, month: str, months: int = TREND_MONTHS) -> list[dict]:
    """accepted, completed and the two main rates for the `months` months up to `month`."""
    out = []
    for m in _months_back(month, months):
        total = st.compute_statistics(rt, user, st.month_period(rt, m))["total"]
        out.append({"month": m, **{k: total[k] for k in ("accepted", "completed", "completion_rate",
                                                        "satisfaction_rate", "red_lights")}})
    return out


# -- XLSX --------------------------------------------------------------------------------------


def _header(ws, row: int, headers: list[str]) -> None:
    for col, text in enumerate(headers, 1):
        cell = ws.cell(row=row, column=col, value=text)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center")


def _widths(ws, widths: list[int]) -> None:
    for i, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = w


def _cover(ws, month: str, total: dict) -> None:
    ws.title = "封面"
    year, m = month.split("-")
    ws["A1"] = f"{year}年{int(m)}月 社会矛盾联动化解工作月度通报"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = "数据来源：案件记录与事件日志（按受理时间统计，截至月末）"
    done = total["completed"]
    community = total["resolved_by_level"]["community"]
    satisfied = total["ratings"]["satisfied"] + total["ratings"]["basically_satisfied"]
    rows = [
        ("受理", total["accepted"], None),
        ("办结", done, None),
        ("办结率", total["completion_rate"], RATE_FORMAT),
        ("社区办结", community, None),
        ("社区办结占办结比", (community / done) if done else None, RATE_FORMAT),
        ("满意（含基本满意）", satisfied, None),
        ("满意率", total["satisfaction_rate"], RATE_FORMAT),
        ("督办", total["supervised"], None),
        ("红灯", total["red_lights"], None),
        ("黄灯", total["yellow_lights"], None),
        ("拒收退回", total["refusals"], None),
        ("转办", total["transfers"], None),
        ("协办案件", total["co_handled"], None),
    ]
    _header(ws, 4, ["指标", "数值"])
    for i, (label, value, fmt) in enumerate(rows, 5):
        ws.cell(row=i, column=1, value=label)
        cell = ws.cell(row=i, column=2, value=value)
        if fmt:
            cell.number_format = fmt
    _widths(ws, [24, 14])


def _group_sheet(wb, title: str, stats: dict, with_chart: bool) -> None:
    ws = wb.create_sheet(title)
    _header(ws, 1, ["代码", "名称"] + [h for _, h in COLUMNS])
    for r, g in enumerate(stats["groups"], 2):
        ws.cell(row=r, column=1, value=g["key"])
        ws.cell(row=r, column=2, value=g["name"])
        for c, (key, _) in enumerate(COLUMNS, 3):
            cell = ws.cell(row=r, column=c, value=g[key])
            if key in st.RATES:
                cell.number_format = RATE_FORMAT
    _widths(ws, [16, 30] + [11] * len(COLUMNS))
    n = len(stats["groups"])
    if with_chart and n:
        chart = BarChart()
        chart.type = "col"
        chart.title = "办结率与满意率"
        chart.y_axis.title = "比率"
        chart.y_axis.number_format = "0%"
        rate_cols = [3 + [k for k, _ in COLUMNS].index(k) for k in ("completion_rate", "satisfaction_rate")]
        for col in rate_cols:
            chart.add_data(Reference(ws, min_col=col, min_row=1, max_row=n + 1), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=2, max_row=n + 1))
        chart.width, chart.height = 24, 10
        ws.add_chart(chart, f"A{n + 4}")


def _ranking_sheet(wb, result: dict) -> None:
    ws = wb.create_sheet("考核排名")
    _header(ws, 1, ["类别", "名次", "代码", "名称", "得分", "较上月", "扣分项（扣分：案件）"])
    for r, u in enumerate(result["units"], 2):
        lost = "；".join(f"{d['label']} -{d['points']}：{', '.join(d['cases'][:10])}"
                        + (" …" if len(d["cases"]) > 10 else "") for d in u["deductions"] if d["points"])
        for c, value in enumerate((u["peer_group"], u["rank"], u["unit"], u["name"], u["score"], u["change"],
                                   lost or "—"), 1):
            ws.cell(row=r, column=c, value=value)
    _widths(ws, [12, 6, 16, 30, 8, 8, 80])


def _trend_sheet(wb, rows: list[dict]) -> None:
    ws = wb.create_sheet("月度趋势")
    _header(ws, 1, ["月份", "受理", "办结", "办结率", "满意率", "红灯"])
    for r, row in enumerate(rows, 2):
        for c, key in enumerate(("month", "accepted", "completed", "completion_rate", "satisfaction_rate",
                                 "red_lights"), 1):
            cell = ws.cell(row=r, column=c, value=row[key])
            if key in st.RATES:
                cell.number_format = RATE_FORMAT
    chart = LineChart()
    chart.title = "受理与办结月度趋势"
    for col in (2, 3):
        chart.add_data(Reference(ws, min_col=col, min_row=1, max_row=len(rows) + 1), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(rows) + 1))
    chart.width, chart.height = 24, 10
    ws.add_chart(chart, f"A{len(rows) + 4}")
    _widths(ws, [10, 8, 8, 10, 10, 8])


def monthly_workbook(rt, user, month: str) -> bytes:
    """The month's report as an XLSX file (bytes)."""
    result = assess.monthly_assessment(rt, month)
    p = st.month_period(rt, month)
    wb = Workbook()
    _cover(wb.active, month, result["statistics"])
    for group_by, title in GROUP_SHEETS.items():
        _group_sheet(wb, title, st.compute_statistics(rt, user, p, group_by=group_by), with_chart=group_by == "unit")
    _ranking_sheet(wb, result)
    _trend_sheet(wb, trend(rt, user, month))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# -- CSV and SVG --------------------------------------------------------------------------------


def statistics_csv(stats: dict) -> str:
    """One row per group (or one for the total), the scalar figures as columns."""
    rows = stats["groups"] if stats["groups"] else [{"key": "total", "name": "合计", **stats["total"]}]
    keys = [k for k, v in stats["total"].items() if not isinstance(v, dict)]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["key", "name", *keys])
    for g in rows:
        writer.writerow([g["key"], g["name"], *(g[k] for k in keys)])
    return buf.getvalue()


CHARTS = ("completion_by_unit", "satisfaction_by_unit", "trend")


def chart_svg(rt, user, chart: str, first: date | None = None, last: date | None = None,
              month: str | None = None) -> str:
    """One chart as standalone SVG: rates by unit over [first, last] (default: this month so far), or the
    trend of the twelve months up to `month` (default: this month)."""
    today = clock.now().astimezone(rt.tz).date()
    last = last or today
    first = first or last.replace(day=1)
    if chart == "trend":
        rows = trend(rt, user, month or f"{last.year}-{last.month:02d}")
        line = pygal.Line(title="受理与办结月度趋势", **CHART_STYLE)
        line.x_labels = [r["month"] for r in rows]
        line.add("受理", [r["accepted"] for r in rows])
        line.add("办结", [r["completed"] for r in rows])
        return line.render(is_unicode=True)
    key, title = {"completion_by_unit": ("completion_rate", "各单位办结率"),
                  "satisfaction_by_unit": ("satisfaction_rate", "各单位满意率")}[chart]
    stats = st.compute_statistics(rt, user, st.period(rt, first, last), group_by="unit")
    groups = [g for g in stats["groups"] if g[key] is not None]
    bar = pygal.HorizontalBar(title=title, range=(0, 1), **CHART_STYLE)
    bar.value_formatter = lambda v: f"{v:.1%}"
    bar.x_labels = [g["name"] for g in groups]
    bar.add(title, [g[key] for g in groups])
    return bar.render(is_unicode=True)
