"""The markup of the HTML report (`report.html`): one Jinja2 template with its inline stylesheet.

Kept apart from the data shaping in `report.html` so that each stays readable. The template is
rendered with autoescaping on and a `finalize` hook that scrubs every printed value; it must
never use ``|safe``. No script, no external resource: the stylesheet and the charts are inline.
"""

from __future__ import annotations

STYLE = """
:root { --ok:#1a7f37; --ok-bg:#dafbe1; --bad:#cf222e; --bad-bg:#ffebe9; --warn:#9a6700;
  --warn-bg:#fff8c5; --odd:#8250df; --odd-bg:#fbefff; --muted:#57606a; --line:#d0d7de;
  --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color:#1f2328; margin:0 auto; padding:24px; max-width:1200px; }
h1 { font-size:26px; margin:0 0 4px; } h2 { font-size:20px; margin:32px 0 8px;
  border-bottom:1px solid var(--line); padding-bottom:4px; }
h3 { font-size:16px; margin:16px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size:13px; }
pre { background:var(--bg); border:1px solid var(--line); border-radius:6px; padding:8px;
  white-space:pre-wrap; word-break:break-all; margin:4px 0; }
.muted { color:var(--muted); }
.banner { border-radius:8px; padding:16px 20px; border:2px solid; }
.banner.pass { background:var(--ok-bg); border-color:var(--ok); }
.banner.fail { background:var(--bad-bg); border-color:var(--bad); }
.banner .verdict { font-size:28px; font-weight:700; letter-spacing:1px; }
.banner.pass .verdict { color:var(--ok); } .banner.fail .verdict { color:var(--bad); }
.chips { margin-top:8px; } .chip { display:inline-block; border-radius:12px; padding:1px 10px;
  margin:2px 6px 2px 0; border:1px solid var(--line); background:#fff; font-size:13px; }
.chip.pass { border-color:var(--ok); color:var(--ok); }
.chip.bad { border-color:var(--bad); color:var(--bad); font-weight:600; }
.failure { border:1px solid var(--bad); border-left:6px solid var(--bad); border-radius:6px;
  padding:8px 12px; margin:10px 0; break-inside:avoid; }
.failure h3 { margin:0 0 4px; word-break:break-all; }
dl.ev { display:grid; grid-template-columns:max-content 1fr; gap:2px 12px; margin:6px 0; }
dl.ev dt { font-weight:600; color:var(--muted); } dl.ev dd { margin:0; word-break:break-all; }
table { border-collapse:collapse; margin:6px 0 12px; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:var(--bg); font-weight:600; }
table.matrix th.op { font-size:12px; writing-mode:vertical-rl; transform:rotate(180deg);
  white-space:nowrap; padding:8px 4px; }
table.matrix td.cell { text-align:center; font-size:12px; min-width:58px; }
td.cell.ok.allow { background:var(--ok-bg); color:var(--ok); }
td.cell.ok.deny { background:#eaeef2; color:var(--muted); }
td.cell.violation { background:var(--bad); color:#fff; font-weight:700; }
td.cell.error { background:var(--warn-bg); color:var(--warn); font-weight:600; }
td.cell.inconclusive { background:var(--odd-bg); color:var(--odd); font-weight:700; }
td.cell.none { background:#fff; color:#8c959f; }
.legend span { display:inline-block; padding:1px 8px; margin-right:8px; border-radius:4px;
  font-size:12px; }
.legend .ok { background:var(--ok-bg); color:var(--ok); }
.legend .ok-deny { background:#eaeef2; color:var(--muted); }
.fix { margin:4px 0 8px; } .fix strong { color:var(--bad); }
.where { margin:4px 0; color:var(--muted); } .where a { color:inherit; }
.legend .violation { background:var(--bad); color:#fff; }
.legend .error { background:var(--warn-bg); color:var(--warn); }
.legend .inconclusive { background:var(--odd-bg); color:var(--odd); }
.legend .none { border:1px solid var(--line); color:#8c959f; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill:#1f2328; }
svg .p50 { fill:#54aeff; } svg .p95 { fill:#0969da; } svg .p99 { fill:#0a3069; }
svg .axis { stroke:#8c959f; stroke-width:1; } svg .mark { fill:#0969da; }
.scenario { border:1px solid var(--line); border-radius:6px; padding:8px 12px; margin:10px 0;
  break-inside:avoid; }
.scenario.failed { border-color:var(--bad); border-left:6px solid var(--bad); }
.badge { display:inline-block; border-radius:4px; padding:0 6px; font-size:12px;
  font-weight:700; text-transform:uppercase; }
.badge.pass { background:var(--ok-bg); color:var(--ok); }
.badge.fail, .badge.bad { background:var(--bad); color:#fff; }
.badge.other { background:var(--warn-bg); color:var(--warn); }
.badge.inconclusive { background:var(--odd); color:#fff; }
.chip.inconclusive { border-color:var(--odd); color:var(--odd); font-weight:600; }
ol.events { margin:4px 0; padding-left:28px; font-size:13px; }
@media print {
  body { padding:0; max-width:none; font-size:11pt; }
  * { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
  h2 { break-after:avoid; } section, .failure, .scenario, table { break-inside:avoid; }
  pre { white-space:pre-wrap; }
}
"""

TEMPLATE = (
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trustproof report: {{ 'PASS' if r.ok else 'FAIL' }}</title>
<style>"""
    + STYLE
    + """</style>
</head>
<body>
{% macro badge(verdict) %}<span class="badge {{ 'pass' if verdict == 'pass' else
  ('other' if verdict in ('skip', 'error') else ('inconclusive' if verdict == 'inconclusive'
  else 'bad')) }}">{{ verdict }}</span>{% endmacro %}
<header id="verdict" class="banner {{ 'pass' if r.ok else 'fail' }}">
  <div class="verdict">{{ 'PASS' if r.ok else 'FAIL' }}{% if ctx.project %}
    <span class="mono">{{ ctx.project }}</span>{% endif %}</div>
  {% if ctx.commit or ctx.ci_url %}<div class="where">
    {% if ctx.commit %}commit <span class="mono" title="{{ ctx.commit }}"
      >{{ ctx.commit[:12] }}</span>{% endif %}
    {% if ctx.ci_url %} · <a href="{{ ctx.ci_url }}">{{ ctx.ci or 'CI' }} run</a>{% endif %}
  </div>{% endif %}
  <div>{% if r.ok %}every boundary behaved as the spec says{% else %}trust is broken:
    {{ failures|length }} case(s) disagree with the spec,
    {{ failed_scenarios|length }} scenario(s) failed{% endif %}</div>
  <div class="chips">
  {% for verdict, count in counts %}
    <span class="chip {{ 'pass' if verdict == 'pass' else
      ('inconclusive' if verdict == 'inconclusive' else 'bad') }}"
      >{{ verdict }}: {{ count }}</span>
  {% endfor %}
    <span class="chip">{{ r.cases|length }} cases</span>
    <span class="chip">{{ '%.0f'|format(r.cases_per_second) }} cases/s</span>
    <span class="chip">elapsed {{ '%.2f'|format(r.elapsed_s) }} s</span>
    <span class="chip">{{ r.scenarios|length }} scenario(s)</span>
  </div>
  {% if r.stopped_early %}<p><strong>Stopped early</strong> (--fail-fast): not every case
    ran.</p>{% endif %}
  {% if r.shard %}<p id="shard"><strong>Shard {{ r.shard.index }}/{{ r.shard.total }}</strong>:
    only this shard's slice of the cases and scenarios; <code>trustproof report merge</code>
    joins every shard into the verdict.</p>{% endif %}
  {% if r.merged_from %}<p id="shards">Merged from {{ r.merged_from|length }} shards
    (the time above is the longest shard's):
    {% for p in r.merged_from %}{{ p.index }}/{{ p.total }} {{ 'pass' if p.ok else 'FAIL' }}
    {{ p.cases }} cases, {{ p.scenarios }} scenarios in {{ '%.2f'|format(p.elapsed_s) }} s{{
    ', ' if not loop.last }}{% endfor %}.</p>{% endif %}
</header>

<section id="failures">
<h2>Failures ({{ failures|length + failed_scenarios|length }})</h2>
{% if not failures and not failed_scenarios %}<p class="muted">None.</p>{% endif %}
{% for g in groups %}{% set c = g.cases[0] %}
<article class="failure" id="failure-{{ loop.index }}">
  <h3>{{ badge(c.verdict) }} {{ g.title }}</h3>
  {% if g.how_to_fix %}<p class="fix"><strong>How to fix:</strong> {{ g.how_to_fix }}.</p>
  {% endif %}
  <p class="mono case-id">{{ c.id }}</p>
  <dl class="ev">
    <dt>expected</dt><dd>{{ c.expected }}</dd>
    <dt>observed</dt><dd>{{ c.observed }}</dd>
    {% if c.reason %}<dt>reason</dt><dd>{{ c.reason }}</dd>{% endif %}
    <dt>sent</dt><dd class="mono">{{ c.evidence.sent }}</dd>
    <dt>status</dt><dd>{{ c.evidence.status if c.evidence.status is not none else '—' }}</dd>
    {% if c.evidence.detail %}<dt>detail</dt>
      <dd class="mono">{{ c.evidence.detail }}</dd>{% endif %}
    <dt>request id</dt><dd class="mono">{{ c.evidence.request_id or '—' }}</dd>
    {% if c.evidence.served_by %}<dt>served by</dt><dd>{{ c.evidence.served_by }}</dd>{% endif %}
  </dl>
  {% if c.evidence.audit %}<div><strong>gateway audit event</strong>
  <pre>{{ audit_json(c.evidence.audit) }}</pre></div>
  {% else %}<p class="muted">no gateway audit event for this request</p>{% endif %}
  {% if g.cases|length > 1 %}<details><summary>{{ g.cases|length - 1 }} more case(s) like
    this one</summary><ul>{% for other in g.cases[1:] %}<li><span class="mono">{{ other.id
    }}</span>: observed {{ other.observed }}{% if other.reason %} ({{ other.reason }}){% endif
    %}</li>{% endfor %}</ul></details>{% endif %}
</article>
{% endfor %}
{% for s in failed_scenarios %}
<article class="failure" id="failed-scenario-{{ loop.index }}">
  <h3>{{ badge(s.verdict) }} scenario <span class="mono case-id">{{ s.id }}</span></h3>
  <p>{{ s.summary }}</p>
  {% for line in s.evidence %}<pre>{{ line }}</pre>{% endfor %}
</article>
{% endfor %}
</section>

{% if outbound_watched %}
<section id="outbound">
<h2>Outbound attempts ({{ outbound|length }})</h2>
{% if outbound %}<p>{{ outbound_intro }}</p>
<ul class="outbound">
{% for line in outbound %}<li class="mono">{{ line }}</li>
{% endfor %}</ul>
{% else %}<p class="muted">{{ outbound_none }}</p>{% endif %}
</section>
{% endif %}

<section id="matrix">
<h2>Access matrix</h2>
<p class="legend"><span class="ok">allowed, as the spec says</span><span class="ok-deny"
>refused, as the spec says</span><span class="violation">violation</span
><span class="inconclusive">inconclusive answer</span><span class="error">could not run</span
><span class="none">not probed</span>
 Each cell: <em>expected</em> → <em>observed</em> for the caller (row) and operation (column).</p>
{% if not matrices %}<p class="muted">No matrix or grants cases in this run.</p>{% endif %}
{% for m in matrices %}
<h3>{{ m.kind }} <span class="mono">{{ m.boundary }}</span>
  {% if m.violations %}<span class="badge bad">{{ m.violations }} violation(s)</span>
  {% endif %}</h3>
<table class="matrix" id="matrix-{{ m.boundary }}" data-kind="{{ m.kind }}">
  <thead><tr><th>caller \\ operation</th>
  {% for op in m.operations %}<th class="op mono">{{ op }}</th>{% endfor %}</tr></thead>
  <tbody>
  {% for caller in m.callers %}
  <tr><th class="mono">{{ caller }}</th>
    {% for op in m.operations %}{% set cell = m.cell(caller, op) %}
    {% if cell %}<td class="cell {{ cell.state }} {{ cell.expected }}"
      title="{{ cell.case_id }}: {{ cell.verdict }}"
      >{{ cell.expected }} → {{ cell.observed }}</td>
    {% else %}<td class="cell none">—</td>{% endif %}
    {% endfor %}
  </tr>
  {% endfor %}
  </tbody>
</table>
{% endfor %}
</section>

<section id="latency">
<h2>Latency added by each verification stage</h2>
{% if not latency %}<p class="muted">No audit timings in this run (no gateway audited
  these requests).</p>{% endif %}
{% for boundary, rows in latency.items() %}
<h3>boundary <span class="mono">{{ boundary }}</span></h3>
<table class="latency">
  <thead><tr><th>stage</th><th>requests</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>
  </thead><tbody>
  {% for row in rows %}<tr><td>{{ row.stage }}</td><td>{{ row.count }}</td>
    <td>{{ '%.3f'|format(row.p50) }}</td><td>{{ '%.3f'|format(row.p95) }}</td>
    <td>{{ '%.3f'|format(row.p99) }}</td></tr>
  {% endfor %}</tbody>
</table>
{% set bars, height = charts[boundary] %}
<svg width="{{ chart_width }}" height="{{ height }}"
  viewBox="0 0 {{ chart_width }} {{ height }}" role="img"
  aria-label="p50, p95 and p99 per stage at {{ boundary }}">
  {% for row in rows %}
  <text x="4" y="{{ 6 + loop.index0 * 48 + 22 }}">{{ row.stage }}</text>
  {% endfor %}
  {% for b in bars %}
  <rect class="{{ b.css }}" x="{{ '%.1f'|format(b.x) }}" y="{{ '%.1f'|format(b.y) }}"
    width="{{ '%.1f'|format(b.width) }}" height="{{ b.height }}"></rect>
  <text x="{{ '%.1f'|format(b.label_x + 4) }}" y="{{ '%.1f'|format(b.y + 9.5) }}"
    font-size="10">{{ b.label }}</text>
  {% endfor %}
</svg>
{% endfor %}
</section>

<section id="scenarios">
<h2>Scenarios ({{ r.scenarios|length }})</h2>
{% if not r.scenarios %}<p class="muted">No scenario ran.</p>{% endif %}
{% for s in r.scenarios %}
<article class="scenario{{ '' if s.ok else ' failed' }}" id="scenario-{{ loop.index }}">
  <h3>{{ badge(s.verdict) }} <span class="mono">{{ s.id }}</span>
    <span class="muted">({{ '%.2f'|format(s.elapsed_s) }} s)</span></h3>
  <p>{{ s.summary }}</p>
  {% set events = timelines[s.id] %}
  {% if events %}
  <svg width="{{ chart_width }}" height="76"
    viewBox="0 0 {{ chart_width }} 76" role="img" aria-label="timeline of {{ s.id }}">
    <line class="axis" x1="20" y1="32" x2="{{ chart_width - 20 }}" y2="32"></line>
    <text x="20" y="72" font-size="10">0 ms</text>
    <text x="{{ chart_width - 20 }}" y="72" font-size="10" text-anchor="end"
      >{{ '%.1f'|format(events[-1].ms) }} ms</text>
    {% for e in events %}
    <circle class="mark" cx="{{ '%.1f'|format(e.x) }}" cy="32" r="4"></circle>
    <text x="{{ '%.1f'|format(e.x) }}" y="{{ 20 if e.up else 50 }}" text-anchor="middle"
      font-size="11">{{ e.n }}</text>
    {% endfor %}
  </svg>
  <ol class="events">
  {% for e in events %}<li><span class="mono">{{ '%.1f'|format(e.ms) }} ms</span>
    {{ e.text }}</li>{% endfor %}
  </ol>
  {% endif %}
  {% if s.figures %}
  <table class="figures"><thead><tr><th>figure</th><th>value</th></tr></thead><tbody>
  {% for name, value in s.figures.items() %}<tr><td class="mono">{{ name }}</td>
    <td>{{ '%g'|format(value) }}</td></tr>{% endfor %}
  </tbody></table>
  {% endif %}
  {% for line in s.evidence %}<pre>{{ line }}</pre>{% endfor %}
</article>
{% endfor %}
</section>

<section id="alerts">
<h2>Alerts ({{ r.alerts|length }})</h2>
{% if not r.alerts %}<p class="muted">No alert was raised.</p>{% else %}
<table><thead><tr><th>severity</th><th>rule</th><th>alert</th><th>count</th></tr></thead><tbody>
{% for a in r.alerts %}
  <tr><td>{{ a.severity }}</td><td class="mono">{{ a.rule }}</td>
  <td>{{ a.title }}<br><span class="muted">{{ a.detail }}</span></td><td>{{ a.count }}</td></tr>
{% endfor %}
</tbody></table>{% endif %}
</section>

<section id="environment">
<h2>Environment</h2>
<table class="env"><tbody>
  <tr><th>spec</th><td class="mono">{{ r.spec or 'not recorded' }}</td></tr>
  <tr><th>trust domain</th><td class="mono">{{ r.trust_domain or 'not recorded' }}</td></tr>
  <tr><th>started at</th><td>{{ r.started_at or 'not recorded' }}</td></tr>
  <tr><th>results version</th><td>{{ r.version }}</td></tr>
  {% if ttl %}{% for name, value in ttl.items() %}<tr><th>{{ name }} lifetime</th>
    <td>{{ value }}</td></tr>{% endfor %}
  {% else %}<tr><th>token and certificate TTLs</th><td class="muted">not recorded in
    results.json</td></tr>{% endif %}
  {% if versions %}
  {% for name, version in versions.items() %}<tr><th>{{ name }} version</th>
    <td>{{ version }}</td></tr>{% endfor %}
  {% else %}
  <tr><th>versions of the run</th><td class="muted">not recorded in results.json; this report
    was rendered by trustproof {{ renderer.trustproof }} on Python {{ renderer.python }}</td></tr>
  {% endif %}
</tbody></table>
</section>
</body>
</html>
"""
)
