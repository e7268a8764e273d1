"""The page's stylesheet (inline CSS: the page loads nothing from the network)."""

from __future__ import annotations

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:20px 24px;
color:#1a202c;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}
.muted{color:#4a5568}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:16px 18px;margin:16px 0}
.stats{display:flex;gap:28px;flex-wrap:wrap;margin:6px 0 10px}.stat b{display:block;font-size:22px}
.badge{display:inline-block;border-radius:4px;padding:2px 8px;margin:0 6px 6px 0;font-weight:600}
.exhausted{background:#fed7d7;color:#822727}.degraded{background:#feebc8;color:#7b341e}
.none-left{color:#c53030}.ok{background:#c6f6d5;color:#22543d}.error{background:#fed7d7;color:#822727}
table{border-collapse:collapse;width:100%;margin-top:8px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #edf2f7;vertical-align:top}th{font-weight:600;color:#4a5568}
td.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
a{color:#2b6cb0}svg.timeline{display:block;width:100%;max-width:1100px;height:auto}
.legend span{margin-right:14px}.dot{display:inline-block;width:10px;height:10px;border-radius:50%;
margin-right:4px;vertical-align:-1px}
.dot.hollow{border:2px solid #a0aec0;width:6px;height:6px}
.diamond{display:inline-block;width:8px;height:8px;border:2px solid #6b46c1;transform:rotate(45deg);
margin-right:5px}.over{background:#fefcbf;color:#744210}h3{font-size:15px;margin:14px 0 2px}
"""
