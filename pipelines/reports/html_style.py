"""The HTML page's style sheet (inline: the page loads nothing).

Below 640 px the page reflows for a phone: the run strips go under their sync's name, the
duration figures above their bar, and the sync health table becomes one card per sync, each
value labelled.
"""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0;
background:#f6f7f9}main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:14px 18px;
margin-bottom:14px;overflow-x:auto}.muted{color:#666}.small{font-size:12px}p.runs{margin:2px 0}
.chip{display:inline-block;border-radius:12px;padding:2px 10px;margin:2px 6px 2px 0;
color:#fff;font-weight:600;font-size:13px;white-space:nowrap}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:middle}
th{font-weight:600;color:#555}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.time{white-space:nowrap}td.reason{min-width:14em}td.name{min-width:9em}
code{font-size:12px;display:inline-block;max-width:100%;overflow-wrap:anywhere}
ul{margin:4px 0 8px 18px;padding:0}.legend span{margin-right:14px;white-space:nowrap;
display:inline-block}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;
border-radius:2px;box-sizing:border-box;vertical-align:-1px}
.runlog{margin:2px 0}.runlog.warn{color:#9a5b00;font-weight:600}
.runlog.fail{color:#c0392b;font-weight:600;overflow-wrap:anywhere}
svg{max-width:100%;height:auto}svg.stretch{display:block;width:100%}
.daily{display:grid;grid-template-columns:2.2em minmax(0,1fr);gap:0 6px;padding:8px 16px 0 0}
.daily .yaxis{position:relative;height:160px;font-size:11px;color:#444}
.daily .yaxis span{position:absolute;right:0;transform:translateY(-50%)}
svg.daily-svg{height:160px}svg.dur-svg{height:20px}
.xaxis{position:relative;height:18px;font-size:10px;color:#444}
.xaxis span{position:absolute;top:3px;transform:translateX(-50%);white-space:nowrap}
.dur-row{display:grid;grid-template-columns:minmax(8em,14em) minmax(0,1fr) 20em;gap:2px 10px;
align-items:center;margin:3px 0}.dur-name{text-align:right;font-size:12px}
.dur-info{font-size:12px;color:#444}.dur-bar{padding-right:14px}
.swatch.tick{width:3px;border-radius:0}
footer{margin:28px 0 8px}footer h3{font-size:17px;margin:0 0 8px}
dl.glossary{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));
gap:8px 20px;margin:0;background:#fff;border:1px solid #e3e5e8;border-radius:8px;
padding:14px 18px}dl.glossary dt{font-weight:600}dl.glossary dd{margin:0;color:#333}
@media (max-width:640px){main{padding:14px 8px}section{padding:10px}
.dur-row{grid-template-columns:minmax(0,1fr) auto;grid-template-areas:"name info" "bar bar"}
.dur-name{grid-area:name;text-align:left}.dur-info{grid-area:info;text-align:right}
.dur-bar{grid-area:bar}.dur-axis .dur-name,.dur-axis .dur-info{display:none}
table.strips tr{display:grid;grid-template-columns:minmax(0,1fr) auto;align-items:center;
border-bottom:1px solid #eee}table.strips td{border:0;padding:2px 4px}
table.strips td:last-child{grid-column:1/-1}
table.health tr:first-child{display:none}table.health tr{display:block;
border-bottom:1px solid #ddd;padding:6px 0}table.health td{display:inline-block;border:0;
padding:1px 8px 1px 0}table.health td.reason{display:block}
table.health td[data-label]::before{content:attr(data-label) ": ";color:#666}}
"""
