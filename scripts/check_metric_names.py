#!/usr/bin/env python3
"""Every metric the chart's dashboard and alert rules query is one a running
gateway exports. Usage: check_metric_names.py METRICS_URL

Renders the chart with both switched on (helm-python-sdk), takes each PromQL
expression, and looks up every metric name in it in a live /metrics scrape.
"""

import re
import sys
import urllib.request

sys.path.insert(0, __import__("os").path.dirname(__file__))
import check_chart  # noqa: E402

# PromQL words that look like metric names but are not.
KEYWORDS = {"sum", "max", "min", "by", "rate", "histogram_quantile", "le", "without", "on", "and", "or", "unless"}


def exported(url):
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            families[name] = kind
    names = set()
    for name, kind in families.items():
        names.add(name)
        if kind == "counter":
            names.add(name if name.endswith("_total") else name + "_total")
        if kind == "histogram":
            names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def main():
    names = exported(sys.argv[1])
    values = check_chart.load_values(check_chart.VALUE_SETS["all-on"])
    expressions = check_chart.promql_of(check_chart.render("all-on", values))
    if not expressions:
        check_chart.fail("no dashboard or rule expressions rendered")
    missing = set()
    for expression in expressions:
        # Drop label matchers, ranges and strings before looking for names.
        bare = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"', " ", expression)
        bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
            if word in KEYWORDS or not ("_" in word):
                continue
            if word not in names:
                missing.add(word)
    if missing:
        check_chart.fail(f"dashboard or rules query metrics the gateway does not export: {sorted(missing)}")
    print(f"chart: all {len(expressions)} dashboard and alert expressions query exported metrics")


if __name__ == "__main__":
    main()
