"""The self-contained HTML QC report (Jinja2).

Figures (``nipype_icainr.qc.figures``) are embedded as base64 PNG data so one
HTML file carries everything. Every number in the report comes from the QC
metrics (``nipype_icainr.qc``).
"""

import base64
import datetime
import html

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ICA-INR QC: {{ name }}</title>
<style>
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
.small { color: #666; font-size: 0.85em; }
</style></head>
<body>
<h1>ICA-INR compression QC</h1>
<p><b>{{ name }}</b><br><span class="small">generated {{ when }}</span></p>
<h2>Summary</h2>
<table>
{% for label, value, note in summary %}<tr><th>{{ label }}</th><td>{{ value }}</td><td class="small">{{ note }}</td></tr>
{% endfor %}</table>
{% for section in sections %}
<h2>{{ section.title }}</h2>
{% if section.text %}<p>{{ section.text }}</p>{% endif %}
{% if section.rows %}<table>{% for row in section.rows %}<tr>{% for cell in row %}{% if loop.first %}<th>{{ cell }}</th>{% else %}<td>{{ cell }}</td>{% endif %}{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% for fig in section.figures %}<img alt="{{ fig.alt }}" src="data:image/png;base64,{{ fig.data }}">
{% endfor %}{% endfor %}
<h2>Software</h2>
<table>{% for k, v in software %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<script>
// lets a headless browser confirm that every figure decoded
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-total", imgs.length);
  document.body.setAttribute("data-images-loaded", ok);
});
</script>
</body></html>
"""


def embed_png(path, alt):
    with open(path, "rb") as fh:
        return {"alt": alt, "data": base64.b64encode(fh.read()).decode("ascii")}


def render_report(name, summary, sections, software):
    """Render the report; ``summary`` is [(label, value, note)], ``sections`` dicts with
    ``title``, optional ``text``, ``rows`` (lists of cells) and ``figures`` (embed_png)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    sections = [dict({"text": "", "rows": [], "figures": []}, **sec) for sec in sections]
    return env.from_string(TEMPLATE).render(
        name=html.unescape(name), summary=summary, sections=sections,
        software=sorted(software.items()),
        when=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def fmt(value, digits=3):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
