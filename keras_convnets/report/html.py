"""The page frame of every report: one HTML file, inline CSS and a few lines of inline JS
(the table sorter), no network. jinja2 with autoescape on: any text that comes from a study
file or a results row is escaped; only :class:`markupsafe.Markup` built by our own helpers is
inserted as HTML.

``render_page(title, sections, *, subtitle="", facts=(), footer="") -> str`` where a section is
``Section(title, body, intro="")`` (``body``: Markup), ``facts`` a list of (label, value) pairs.
"""

from __future__ import annotations

import dataclasses

from jinja2 import Environment
from markupsafe import Markup

__all__ = ["Section", "render_page", "ENV"]

ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)


@dataclasses.dataclass
class Section:
    title: str
    body: Markup | str = ""
    intro: str = ""
    anchor: str = ""


CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em} h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
.subtitle{color:#555;margin-top:0} .verdict{font-size:1.1em;padding:.8em 1em;border-left:5px solid #d62728;
background:#fbf3f3} .verdict.yes{border-color:#2ca02c;background:#f2f9f2} .verdict.mixed{border-color:#ff7f0e;
background:#fdf6ee} dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.facts dt{font-weight:600;color:#444} dl.facts dd{margin:0} img.figure{max-width:100%;height:auto;
border:1px solid #eee;margin:.5em 0} .figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));
gap:1em} table{border-collapse:collapse;font-size:.85em;width:100%} th,td{border:1px solid #ddd;
padding:.25em .45em;text-align:right} th{background:#f4f4f4;cursor:pointer;position:sticky;top:0}
td:first-child,th:first-child,td:nth-child(2){text-align:left} tr.failed td{color:#b00}
tr.best td{font-weight:600} .note{color:#555;font-size:.9em} code{background:#f4f4f4;padding:0 .2em}
.wrap{overflow-x:auto}
"""

# Click a header to sort by it (numbers by value via data-v, text otherwise); click again to reverse.
JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=t.tBodies[0], rows=Array.from(body.rows), asc=th.dataset.asc!=='1';
      t.querySelectorAll('th').forEach(function(h){delete h.dataset.asc;});
      th.dataset.asc=asc?'1':'0';
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v, y=b.cells[i].dataset.v, nx=parseFloat(x), ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:(x<y?-1:x>y?1:0);
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""

PAGE = ENV.from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head><body>
<h1>{{ title }}</h1>
{% if subtitle %}<p class="subtitle">{{ subtitle }}</p>{% endif %}
{% if facts %}<dl class="facts">{% for k, v in facts %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>{% endif %}
{% for s in sections %}
<h2 id="{{ s.anchor }}">{{ s.title }}</h2>
{% if s.intro %}<p>{{ s.intro }}</p>{% endif %}
{{ s.body }}
{% endfor %}
{% if footer %}<p class="note">{{ footer }}</p>{% endif %}
<script>{{ js }}</script>
</body></html>
"""
)


def render_page(title: str, sections: list[Section], *, subtitle: str = "", facts=(), footer: str = "") -> str:
    for i, s in enumerate(sections):
        s.anchor = s.anchor or f"s{i}"
    return PAGE.render(title=title, subtitle=subtitle, facts=list(facts), sections=sections, footer=footer,
                       css=Markup(CSS), js=Markup(JS))
