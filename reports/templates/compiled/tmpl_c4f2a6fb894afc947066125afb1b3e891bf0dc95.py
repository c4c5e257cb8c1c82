from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'report.html'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_doc = resolve('doc')
    l_0_summary = resolve('summary')
    l_0_gate_text = resolve('gate_text')
    l_0_total = resolve('total')
    l_0_statuses = resolve('statuses')
    l_0_groups = resolve('groups')
    l_0_t = l_0_host = l_0_css = l_0_js = missing
    try:
        t_1 = environment.filters['csp_hash']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'csp_hash' found.")
    try:
        t_2 = environment.filters['format']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No filter named 'format' found.")
    try:
        t_3 = environment.filters['show']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'show' found.")
    pass
    l_0_t = environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'target')
    context.vars['t'] = l_0_t
    context.exported_vars.add('t')
    l_0_host = (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'hostname') or (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'root') if (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'mode') != 'live') else 'unknown host'))
    context.vars['host'] = l_0_host
    context.exported_vars.add('host')
    t_4 = []
    pass
    t_4.append(
        ':root{--fg:#1d2327;--muted:#5f6b73;--bg:#fff;--panel:#f5f7f9;--line:#d9dee3;\n--fail:#b3261e;--error:#7b2cbf;--warn:#a15c00;--waived:#00707a;--skip:#5f6b73;--pass:#1e7b34}\n*{box-sizing:border-box}\nbody{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}\nheader,main,footer{max-width:1180px;margin:0 auto;padding:0 16px}\nheader{padding-top:20px}\nh1{font-size:1.45em;margin:0 0 4px;overflow-wrap:anywhere}\nh1 .tool{color:var(--muted);font-weight:400}\nh2{font-size:1.1em;margin:26px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line);display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}\nh2 .counts{font-size:.8em;font-weight:400;color:var(--muted)}\ncode,pre,.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.92em}\ndl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:12px 0;padding:12px 14px;background:var(--panel);border-radius:8px}\ndl.facts dt{color:var(--muted)}\ndl.facts dd{margin:0;overflow-wrap:anywhere}\n.summary{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:12px 0}\n.summary .total{font-weight:600;margin-right:4px}\n.badge{display:inline-block;min-width:3.6em;padding:2px 9px;border-radius:999px;color:#fff;font-size:.8em;font-weight:700;letter-spacing:.03em;text-align:center;text-transform:uppercase;background:var(--skip);-webkit-print-color-adjust:exact;print-color-adjust:exact}\n.summary .badge{font-size:.9em;padding:4px 12px}\n.summary .badge.zero{opacity:.45}\n.s-fail{background:var(--fail)}.s-error{background:var(--error)}.s-warn{background:var(--warn)}\n.s-waived{background:var(--waived)}.s-skip{background:var(--skip)}.s-pass{background:var(--pass)}\n.problems{border-left:4px solid var(--error);background:#f6effc;padding:8px 12px;margin:12px 0}\n.problems ul{margin:4px 0;padding-left:20px}\n.toolbar{display:none;flex-wrap:wrap;gap:6px;align-items:center;margin:14px 0 4px;padding:8px 0;border-top:1px solid var(--line);border-bottom:1px solid var(--line);position:sticky;top:0;background:var(--bg);z-index:1}\n.js .toolbar{display:flex}\n.toolbar .label{color:var(--muted);margin-right:4px}\n.toolbar .spacer{flex:1}\nbutton{font:inherit;font-size:.88em;padding:4px 10px;border:1px solid var(--line);border-radius:6px;background:var(--panel);color:var(--fg);cursor:pointer}\nbutton:hover{border-color:var(--muted)}\nbutton[aria-pressed="true"]{background:var(--fg);border-color:var(--fg);color:#fff}\nbutton:focus-visible,summary:focus-visible{outline:2px solid #1a73e8;outline-offset:2px}\n.shown{color:var(--muted);font-size:.88em}\ndetails.result{border:1px solid var(--line);border-left:5px solid var(--skip);border-radius:6px;margin:6px 0;background:var(--bg)}\ndetails.result.st-fail{border-left-color:var(--fail)}details.result.st-error{border-left-color:var(--error)}\ndetails.result.st-warn{border-left-color:var(--warn)}details.result.st-waived{border-left-color:var(--waived)}\ndetails.result.st-pass{border-left-color:var(--pass)}\ndetails.result>summary{display:grid;grid-template-columns:.8em 5.2em 5.6em minmax(11em,16em) 1fr;gap:4px 10px;align-items:baseline;padding:7px 10px;cursor:pointer;list-style:none}\ndetails.result>summary::-webkit-details-marker{display:none}\ndetails.result>summary::before{content:"\\25B8";color:var(--muted)}\ndetails.result[open]>summary::before{content:"\\25BE"}\ndetails.result[open]>summary{border-bottom:1px solid var(--line);background:var(--panel)}\n.sev{font-size:.8em;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}\n.sev-critical,.sev-high{color:var(--fail);font-weight:700}\n.id{overflow-wrap:anywhere}\n.what{min-width:0}\n.what .title{font-weight:600}\n.what .msg{display:block;color:var(--muted);overflow-wrap:anywhere}\n.what .gate{display:block;color:var(--muted);font-weight:600;overflow-wrap:anywhere}\n.what .gate.counts{color:var(--fail)}\n.req{margin-left:6px;padding:0 6px;border:1px solid var(--line);border-radius:4px;font-size:.75em;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}\n.body{padding:8px 14px 12px}\n.body h3{font-size:.85em;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:12px 0 4px}\n.body p{margin:4px 0}\ntable.evidence{border-collapse:collapse;width:100%;font-size:.92em}\ntable.evidence th,table.evidence td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line);overflow-wrap:anywhere}\ntable.evidence th{color:var(--muted);font-weight:600;white-space:nowrap}\ntable.evidence td:first-child{min-width:9em;width:30%}\n.cmd{position:relative}\n.cmd pre{margin:4px 0;padding:10px 12px;padding-right:5.5em;background:#1d2327;color:#f5f7f9;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;-webkit-print-color-adjust:exact;print-color-adjust:exact}\n.cmd .copy{position:absolute;top:6px;right:6px;display:none}\n.js .cmd .copy{display:inline-block}\n.reboot{color:var(--warn);font-weight:600}\n.meta{color:var(--muted);font-size:.85em;margin-top:10px}\nfooter{color:var(--muted);font-size:.85em;padding:20px 16px 30px}\n@media (max-width:700px){\nbody{font-size:14px}\ndl.facts{gap:2px 10px;padding:10px}\ndetails.result>summary{grid-template-columns:.8em auto auto 1fr}\ndetails.result>summary .id{grid-column:4}\ndetails.result>summary .what{grid-column:2/-1}\ntable.evidence,table.evidence tbody,table.evidence tr,table.evidence td{display:block;width:100%}\ntable.evidence thead{display:none}\ntable.evidence td,table.evidence td:first-child{border:0;padding:1px 0;width:100%;min-width:0}\ntable.evidence tr{border-bottom:1px solid var(--line);padding:4px 0}\ntable.evidence td::before{content:attr(data-label) ": ";color:var(--muted)}\n.toolbar{position:static}\n}\n@media print{\nbody{font-size:10pt}\n.toolbar,.copy{display:none !important}\n.category[hidden],details.result[hidden]{display:block !important}\ndetails.result{break-inside:avoid}\ndetails.result>summary{grid-template-columns:5.2em 5.6em 14em 1fr}\ndetails.result>summary::before{display:none}\n.cmd pre{padding-right:12px}\na{color:inherit;text-decoration:none}\n}',
    )
    l_0_css = (Markup if context.eval_ctx.autoescape else identity)(concat(t_4))
    context.vars['css'] = l_0_css
    context.exported_vars.add('css')
    t_5 = []
    pass
    t_5.append(
        '(function () {\n  "use strict";\n  var KNOWN = ["fail", "error", "warn", "waived", "skip", "pass"];\n  var GROUPS = { all: null, problems: ["fail", "error", "warn"] };\n  var root = document.documentElement;\n  root.classList.add("js");\n  var rows = Array.prototype.slice.call(document.querySelectorAll("details.result"));\n  var sections = Array.prototype.slice.call(document.querySelectorAll("section.category"));\n  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-filter]"));\n  var shown = document.getElementById("shown");\n\n  /* the filter lives in the URL fragment (#filter=fail or #filter=fail,error), so a link or a\n     bookmark opens the same view and a headless browser can be asked for it */\n  function current() {\n    var m = /(?:^#|[#&])filter=([a-z,]+)/.exec(window.location.hash || "");\n    if (!m) { return { key: "all", wanted: null }; }\n    if (Object.prototype.hasOwnProperty.call(GROUPS, m[1])) { return { key: m[1], wanted: GROUPS[m[1]] }; }\n    var wanted = m[1].split(",").filter(function (s) { return KNOWN.indexOf(s) >= 0; });\n    return wanted.length ? { key: wanted.join(","), wanted: wanted } : { key: "all", wanted: null };\n  }\n\n  function apply() {\n    var f = current();\n    var count = 0;\n    rows.forEach(function (row) {\n      var hide = f.wanted !== null && f.wanted.indexOf(row.getAttribute("data-status")) < 0;\n      row.hidden = hide;\n      if (!hide) { count += 1; }\n    });\n    sections.forEach(function (section) {\n      section.hidden = !section.querySelector("details.result:not([hidden])");\n    });\n    buttons.forEach(function (b) {\n      b.setAttribute("aria-pressed", b.getAttribute("data-filter") === f.key ? "true" : "false");\n    });\n    if (shown) { shown.textContent = count + " of " + rows.length + " shown"; }\n  }\n\n  buttons.forEach(function (b) {\n    b.addEventListener("click", function () {\n      var key = b.getAttribute("data-filter");\n      if (key === "all") {\n        history.replaceState(null, "", window.location.pathname + window.location.search);\n        apply();\n      } else {\n        window.location.hash = "filter=" + key;\n      }\n    });\n  });\n  window.addEventListener("hashchange", apply);\n\n  function setOpen(open) { rows.forEach(function (row) { row.open = open; }); }\n  var expand = document.getElementById("expand-all");\n  var collapse = document.getElementById("collapse-all");\n  if (expand) { expand.addEventListener("click", function () { setOpen(true); }); }\n  if (collapse) { collapse.addEventListener("click", function () { setOpen(false); }); }\n\n  /* printed, every finding is complete: open all rows, then restore what the reader had */\n  var wasOpen = [];\n  window.addEventListener("beforeprint", function () {\n    wasOpen = rows.map(function (row) { return row.open; });\n    setOpen(true);\n  });\n  window.addEventListener("afterprint", function () {\n    rows.forEach(function (row, i) { row.open = !!wasOpen[i]; });\n  });\n\n  function copied(button, ok) {\n    button.textContent = ok ? "Copied" : "Select";\n    window.setTimeout(function () { button.textContent = "Copy"; }, 1500);\n  }\n  function selectText(node) {\n    var range = document.createRange();\n    range.selectNodeContents(node);\n    var sel = window.getSelection();\n    sel.removeAllRanges();\n    sel.addRange(range);\n  }\n  document.querySelectorAll(".cmd .copy").forEach(function (button) {\n    button.addEventListener("click", function () {\n      var pre = button.parentNode.querySelector("pre");\n      var text = pre.textContent;\n      if (navigator.clipboard && window.isSecureContext) {\n        navigator.clipboard.writeText(text).then(function () { copied(button, true); },\n          function () { selectText(pre); copied(button, false); });\n      } else {\n        selectText(pre);\n        var ok = false;\n        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }\n        copied(button, ok);\n      }\n    });\n  });\n\n  apply();\n}());',
    )
    l_0_js = (Markup if context.eval_ctx.autoescape else identity)(concat(t_5))
    context.vars['js'] = l_0_js
    context.exported_vars.add('js')
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src '
    yield escape(t_1((undefined(name='css') if l_0_css is missing else l_0_css)))
    yield '; script-src '
    yield escape(t_1((undefined(name='js') if l_0_js is missing else l_0_js)))
    yield '; base-uri \'none\'; form-action \'none\'">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="generator" content="hostaudit '
    yield escape(t_3(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'tool'), 'version')))
    yield '">\n<title>hostaudit: '
    yield escape(t_3((undefined(name='host') if l_0_host is missing else l_0_host)))
    yield ': '
    yield escape(environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'fail'))
    yield ' failed, '
    yield escape(environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'error'))
    yield ' errors, '
    yield escape(environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'warn'))
    yield ' warnings</title>\n<style>'
    yield escape((undefined(name='css') if l_0_css is missing else l_0_css))
    yield '</style>\n</head>\n<body>\n<header>\n<h1>'
    yield escape(t_3((undefined(name='host') if l_0_host is missing else l_0_host)))
    yield ' <span class="tool">hostaudit report</span></h1>\n<dl class="facts">\n<dt>Host</dt><dd id="fact-host">'
    yield escape(t_3((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'hostname') or 'unknown')))
    yield '</dd>\n<dt>OS</dt><dd id="fact-os">'
    yield escape(t_3((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'os') or 'unknown')))
    if environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'os_id'):
        pass
        yield ' ('
        yield escape(t_3(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'os_id')))
        yield ')'
    yield '</dd>\n<dt>Architecture</dt><dd id="fact-arch">'
    yield escape(t_3((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'arch') or 'unknown')))
    if environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'arch_source'):
        pass
        yield ' <span class="shown">('
        yield escape(t_3(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'arch_source')))
        yield ')</span>'
    yield '</dd>\n<dt>Kernel</dt><dd id="fact-kernel">'
    yield escape(t_3((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'kernel_release') or 'unknown')))
    if environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'kernel_release_source'):
        pass
        yield ' <span class="shown">('
        yield escape(t_3(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'kernel_release_source')))
        yield ')</span>'
    yield '</dd>\n<dt>Target</dt><dd id="fact-target">'
    yield escape(t_3(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'mode')))
    if ((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'mode') != 'live') or (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'root') != '/')):
        pass
        yield ' at <code>'
        yield escape(t_3(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'root')))
        yield '</code>'
    yield '</dd>\n<dt>Profile</dt><dd id="fact-profile">'
    yield escape(t_3(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'profile')))
    yield '</dd>\n<dt>Audited</dt><dd id="fact-time"><time datetime="'
    yield escape(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'started_at'))
    yield '">'
    yield escape(t_3(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'started_at')))
    yield '</time> in '
    yield escape(t_2('%.0f', environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'duration_ms')))
    yield ' ms</dd>\n<dt>Tool</dt><dd id="fact-tool">hostaudit '
    yield escape(t_3(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'tool'), 'version')))
    yield '</dd>\n<dt>Exit code</dt><dd id="fact-exit">'
    yield escape(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'exit_code'))
    yield '</dd>\n<dt>Gate</dt><dd id="fact-gate" data-counting="'
    yield escape(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'gate'), 'counting'))
    yield '">'
    yield escape(t_3((undefined(name='gate_text') if l_0_gate_text is missing else l_0_gate_text)))
    yield '</dd>\n</dl>\n<div class="summary" id="summary">\n<span class="total" data-summary="total">'
    yield escape((undefined(name='total') if l_0_total is missing else l_0_total))
    yield ' checks</span>'
    for l_1_s in (undefined(name='statuses') if l_0_statuses is missing else l_0_statuses):
        _loop_vars = {}
        pass
        yield '\n<span class="badge s-'
        yield escape(l_1_s)
        if (not environment.getitem((undefined(name='summary') if l_0_summary is missing else l_0_summary), l_1_s)):
            pass
            yield ' zero'
        yield '" data-summary="'
        yield escape(l_1_s)
        yield '" title="'
        yield escape(environment.getitem((undefined(name='summary') if l_0_summary is missing else l_0_summary), l_1_s))
        yield ' '
        yield escape(l_1_s)
        yield '"><span class="n">'
        yield escape(environment.getitem((undefined(name='summary') if l_0_summary is missing else l_0_summary), l_1_s))
        yield '</span> '
        yield escape(l_1_s)
        yield '</span>'
    l_1_s = missing
    yield '\n</div>'
    if environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'problems'):
        pass
        yield '\n<div class="problems" id="problems"><strong>Problems (plugins, policy)</strong>\n<ul>'
        for l_1_p in environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'problems'):
            _loop_vars = {}
            pass
            yield '\n<li>'
            yield escape(t_3(l_1_p))
            yield '</li>'
        l_1_p = missing
        yield '\n</ul>\n</div>'
    yield '\n<nav class="toolbar" aria-label="Filter results">\n<span class="label">Show</span>\n<button type="button" data-filter="all" aria-pressed="true">All ('
    yield escape((undefined(name='total') if l_0_total is missing else l_0_total))
    yield ')</button>\n<button type="button" data-filter="problems" aria-pressed="false">Problems ('
    yield escape(((environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'fail') + environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'error')) + environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'warn')))
    yield ')</button>'
    for l_1_s in (undefined(name='statuses') if l_0_statuses is missing else l_0_statuses):
        _loop_vars = {}
        pass
        yield '\n<button type="button" data-filter="'
        yield escape(l_1_s)
        yield '" aria-pressed="false">'
        yield escape(l_1_s)
        yield ' ('
        yield escape(environment.getitem((undefined(name='summary') if l_0_summary is missing else l_0_summary), l_1_s))
        yield ')</button>'
    l_1_s = missing
    yield '\n<span class="spacer"></span>\n<span class="shown" id="shown"></span>\n<button type="button" id="expand-all">Expand all</button>\n<button type="button" id="collapse-all">Collapse all</button>\n</nav>\n</header>\n<main>'
    if (not (undefined(name='groups') if l_0_groups is missing else l_0_groups)):
        pass
        yield '\n<p>No check ran.</p>'
    l_1_loop = missing
    for l_1_g, l_1_loop in LoopContext((undefined(name='groups') if l_0_groups is missing else l_0_groups), undefined):
        _loop_vars = {}
        pass
        yield '\n<section class="category" data-category="'
        yield escape(t_3(environment.getattr(l_1_g, 'category')))
        yield '">\n<h2>'
        yield escape(t_3(environment.getattr(l_1_g, 'category')))
        yield ' <span class="counts">'
        def t_6(fiter):
            for l_2_s in fiter:
                if environment.getitem(environment.getattr(l_1_g, 'counts'), l_2_s):
                    yield l_2_s
        l_2_loop = missing
        for l_2_s, l_2_loop in LoopContext(t_6((undefined(name='statuses') if l_0_statuses is missing else l_0_statuses)), undefined):
            _loop_vars = {}
            pass
            yield escape(environment.getitem(environment.getattr(l_1_g, 'counts'), l_2_s))
            yield ' '
            yield escape(l_2_s)
            if (not environment.getattr(l_2_loop, 'last')):
                pass
                yield ', '
        l_2_loop = l_2_s = missing
        yield '</span></h2>'
        l_2_loop = missing
        for l_2_r, l_2_loop in LoopContext(environment.getattr(l_1_g, 'results'), undefined):
            _loop_vars = {}
            pass
            yield '\n<details class="result st-'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '" data-status="'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '" data-id="'
            yield escape(t_3(environment.getattr(l_2_r, 'id')))
            yield '" data-gate="'
            yield escape(environment.getattr(environment.getattr(l_2_r, 'gate'), 'status'))
            yield '" data-counts="'
            yield escape(('true' if environment.getattr(environment.getattr(l_2_r, 'gate'), 'counts') else 'false'))
            yield '" data-required="'
            yield escape(('true' if environment.getattr(l_2_r, 'required') else 'false'))
            yield '" id="check-'
            yield escape(t_3(environment.getattr(l_2_r, 'id')))
            yield '">\n<summary><span class="badge s-'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '">'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '</span><span class="sev sev-'
            yield escape(environment.getattr(l_2_r, 'severity'))
            yield '">'
            yield escape(environment.getattr(l_2_r, 'severity'))
            yield '</span><code class="id">'
            yield escape(t_3(environment.getattr(l_2_r, 'id')))
            yield '</code><span class="what"><span class="title">'
            yield escape(t_3(environment.getattr(l_2_r, 'title')))
            yield '</span>'
            if environment.getattr(l_2_r, 'required'):
                pass
                yield '<span class="req">required</span>'
            if environment.getattr(environment.getattr(l_2_r, 'gate'), 'note'):
                pass
                yield '<span class="gate'
                if environment.getattr(environment.getattr(l_2_r, 'gate'), 'counts'):
                    pass
                    yield ' counts'
                yield '">'
                yield escape(t_3(environment.getattr(environment.getattr(l_2_r, 'gate'), 'note')))
                yield '</span>'
            yield '<span class="msg">'
            yield escape(t_3(environment.getattr(l_2_r, 'message')))
            yield '</span></span></summary>\n<div class="body">'
            if environment.getattr(l_2_r, 'rationale'):
                pass
                yield '\n<p class="why">'
                yield escape(t_3(environment.getattr(l_2_r, 'rationale')))
                yield '</p>'
            if environment.getattr(l_2_r, 'evidence'):
                pass
                yield '\n<h3>Evidence</h3>\n<table class="evidence">\n<thead><tr><th>read</th><th>observed</th><th>expected</th></tr></thead>\n<tbody>'
                for l_3_e in environment.getattr(l_2_r, 'evidence'):
                    _loop_vars = {}
                    pass
                    yield '\n<tr><td data-label="read"><code>'
                    yield escape(t_3(environment.getattr(l_3_e, 'source')))
                    yield '</code></td><td data-label="observed">'
                    yield escape(t_3(environment.getattr(l_3_e, 'observed')))
                    yield '</td><td data-label="expected">'
                    yield escape(t_3((environment.getattr(l_3_e, 'expected') or '')))
                    yield '</td></tr>'
                l_3_e = missing
                yield '\n</tbody>\n</table>'
            if environment.getattr(l_2_r, 'remediation'):
                pass
                yield '\n<h3>Remediation</h3>'
                if environment.getattr(environment.getattr(l_2_r, 'remediation'), 'notes'):
                    pass
                    yield '\n<p class="notes">'
                    yield escape(t_3(environment.getattr(environment.getattr(l_2_r, 'remediation'), 'notes')))
                    yield '</p>'
                if environment.getattr(environment.getattr(l_2_r, 'remediation'), 'commands'):
                    pass
                    yield '\n<div class="cmd"><pre><code>'
                    l_3_loop = missing
                    for l_3_c, l_3_loop in LoopContext(environment.getattr(environment.getattr(l_2_r, 'remediation'), 'commands'), undefined):
                        _loop_vars = {}
                        pass
                        yield escape(t_3(l_3_c))
                        if (not environment.getattr(l_3_loop, 'last')):
                            pass
                            yield '\n'
                    l_3_loop = l_3_c = missing
                    yield '</code></pre><button type="button" class="copy">Copy</button></div>'
                if environment.getattr(environment.getattr(l_2_r, 'remediation'), 'reboot_required'):
                    pass
                    yield '\n<p class="reboot">A reboot is needed for this to take effect.</p>'
            if environment.getattr(l_2_r, 'waiver'):
                pass
                yield '\n<h3>Waiver</h3>\n<p class="waiver">'
                yield escape(t_3(environment.getattr(l_2_r, 'waiver')))
                yield '</p>'
            yield '\n<p class="meta">plugin '
            yield escape(t_3(environment.getattr(l_2_r, 'plugin')))
            yield ' · '
            yield escape(t_2('%.1f', environment.getattr(l_2_r, 'duration_ms')))
            yield ' ms</p>\n</div>\n</details>'
        l_2_loop = l_2_r = missing
        yield '\n</section>'
    l_1_loop = l_1_g = missing
    yield '\n</main>\n<footer>Generated by hostaudit '
    yield escape(t_3(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'tool'), 'version')))
    yield ' (report schema '
    yield escape(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'schema_version'))
    yield '). Review every command before running it.</footer>\n<script>'
    yield escape((undefined(name='js') if l_0_js is missing else l_0_js))
    yield '</script>\n</body>\n</html>\n'

blocks = {}
debug_info = '5=36&6=39&7=47&96=55&198=59&200=63&201=65&202=73&206=75&208=77&209=79&210=86&211=93&212=100&213=107&214=109&215=115&216=117&217=119&220=123&221=125&222=129&225=146&228=149&229=153&236=158&237=160&238=162&239=166&248=174&251=178&252=182&253=184&254=186&256=203&257=207&258=221&260=248&261=251&263=253&268=256&269=260&274=268&276=271&277=274&279=276&280=280&283=289&287=292&289=295&291=298&298=306&299=310'