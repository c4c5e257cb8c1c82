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
    l_0_total = resolve('total')
    l_0_statuses = resolve('statuses')
    l_0_gate_text = resolve('gate_text')
    l_0_groups = resolve('groups')
    l_0_t = l_0_host = l_0_fix = l_0_css = l_0_js = l_0_commands = missing
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
        t_3 = environment.filters['length']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'length' found.")
    try:
        t_4 = environment.filters['show']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No filter named 'show' found.")
    try:
        t_5 = environment.filters['to_fix']
    except KeyError:
        @internalcode
        def t_5(*unused):
            raise TemplateRuntimeError("No filter named 'to_fix' found.")
    try:
        t_6 = environment.filters['upper']
    except KeyError:
        @internalcode
        def t_6(*unused):
            raise TemplateRuntimeError("No filter named 'upper' found.")
    pass
    l_0_t = environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'target')
    context.vars['t'] = l_0_t
    context.exported_vars.add('t')
    l_0_host = (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'hostname') or (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'root') if (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'mode') != 'live') else 'unknown host'))
    context.vars['host'] = l_0_host
    context.exported_vars.add('host')
    l_0_fix = t_5((undefined(name='doc') if l_0_doc is missing else l_0_doc))
    context.vars['fix'] = l_0_fix
    context.exported_vars.add('fix')
    t_7 = []
    pass
    t_7.append(
        ':root{--fg:#1d2327;--muted:#5f6b73;--bg:#fff;--panel:#f5f7f9;--line:#d9dee3;\n--fail:#b3261e;--error:#7b2cbf;--warn:#a15c00;--waived:#00707a;--skip:#5f6b73;--pass:#1e7b34}\n*{box-sizing:border-box}\nbody{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}\nheader,main,footer{max-width:1180px;margin:0 auto;padding:0 16px}\nheader{padding-top:20px}\nh1{font-size:1.45em;margin:0 0 4px;overflow-wrap:anywhere}\nh1 .tool{color:var(--muted);font-weight:400}\nh2{font-size:1.25em;margin:22px 0 8px}\nh3.category-name{font-size:1.05em;margin:22px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line);display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}\n.counts{font-size:.8em;font-weight:400;color:var(--muted)}\ncode,pre,.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.92em}\n.brk{display:none}\n.sep{color:var(--muted)}\ndl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content minmax(0,1fr);gap:2px 14px;margin:12px 0;padding:10px 14px;background:var(--panel);border-radius:8px}\ndl.facts dt{color:var(--muted)}\ndl.facts dd{margin:0;overflow-wrap:anywhere}\n.summary{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:12px 0}\n.summary .total{font-weight:600;margin-right:4px}\n.badge{display:inline-block;min-width:3.6em;padding:2px 9px;border-radius:999px;color:#fff;font-size:.8em;font-weight:700;letter-spacing:.03em;text-align:center;text-transform:uppercase;background:var(--skip);-webkit-print-color-adjust:exact;print-color-adjust:exact}\n.summary .badge{font-size:.9em;padding:4px 12px}\n.summary .badge.zero{opacity:.45}\n.s-fail{background:var(--fail)}.s-error{background:var(--error)}.s-warn{background:var(--warn)}\n.s-waived{background:var(--waived)}.s-skip{background:var(--skip)}.s-pass{background:var(--pass)}\n.problems{border-left:4px solid var(--error);background:#f6effc;padding:8px 12px;margin:12px 0}\n.problems ul{margin:4px 0;padding-left:20px}\n.lead{margin:4px 0 10px;color:var(--muted)}\nol.fixes{list-style:none;margin:0;padding:0}\nli.fix{border:1px solid var(--line);border-left:5px solid var(--skip);border-radius:6px;margin:10px 0;padding:8px 14px 10px}\nli.fix.st-fail{border-left-color:var(--fail)}li.fix.st-error{border-left-color:var(--error)}li.fix.st-warn{border-left-color:var(--warn)}\nli.fix h3{font-size:1em;margin:0 0 4px;display:flex;flex-wrap:wrap;gap:2px 8px;align-items:baseline}\nli.fix h3 .title{font-weight:600;min-width:0;overflow-wrap:anywhere}\nli.fix p{margin:4px 0}\nli.fix .msg{font-weight:600;overflow-wrap:anywhere}\nli.fix .gate{color:var(--muted)}\nli.fix .gate.counts{color:var(--fail)}\nul.evidence{margin:4px 0;padding-left:0;list-style:none}\nul.evidence li{overflow-wrap:anywhere}\nul.evidence li::before{content:"\\2022\\00a0";color:var(--muted)}\n.label{color:var(--muted);font-weight:600}\n.toolbar{display:none;flex-wrap:wrap;gap:6px;align-items:center;margin:8px 0 4px;padding:8px 0;border-top:1px solid var(--line);border-bottom:1px solid var(--line);position:sticky;top:0;background:var(--bg);z-index:1}\n.js .toolbar{display:flex}\n.toolbar .label{color:var(--muted);margin-right:4px;font-weight:400}\n.toolbar .spacer{flex:1}\nbutton{font:inherit;font-size:.88em;padding:4px 10px;border:1px solid var(--line);border-radius:6px;background:var(--panel);color:var(--fg);cursor:pointer}\nbutton:hover{border-color:var(--muted)}\nbutton[aria-pressed="true"]{background:var(--fg);border-color:var(--fg);color:#fff}\nbutton:focus-visible,summary:focus-visible{outline:2px solid #1a73e8;outline-offset:2px}\n.shown{color:var(--muted);font-size:.88em}\ndetails.result{border:1px solid var(--line);border-left:5px solid var(--skip);border-radius:6px;margin:6px 0;background:var(--bg)}\ndetails.result.st-fail{border-left-color:var(--fail)}details.result.st-error{border-left-color:var(--error)}\ndetails.result.st-warn{border-left-color:var(--warn)}details.result.st-waived{border-left-color:var(--waived)}\ndetails.result.st-pass{border-left-color:var(--pass)}\ndetails.result>summary{display:grid;grid-template-columns:.8em 5.2em auto 5.6em auto minmax(11em,16em) 1fr;gap:4px 6px;align-items:baseline;padding:7px 10px;cursor:pointer;list-style:none}\ndetails.result>summary::-webkit-details-marker{display:none}\ndetails.result>summary>.dash{display:none}\ndetails.result>summary::before{content:"\\25B8";color:var(--muted)}\ndetails.result[open]>summary::before{content:"\\25BE"}\ndetails.result[open]>summary{border-bottom:1px solid var(--line);background:var(--panel)}\n.sev{font-size:.8em;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}\n.sev-critical,.sev-high{color:var(--fail);font-weight:700}\n.id{overflow-wrap:anywhere}\n.what{min-width:0}\n.what .title{font-weight:600}\n.what .msg{display:block;color:var(--muted);overflow-wrap:anywhere}\n.what .gate{display:block;color:var(--muted);font-weight:600;overflow-wrap:anywhere}\n.what .gate.counts{color:var(--fail)}\n.req{margin-left:6px;padding:0 6px;border:1px solid var(--line);border-radius:4px;font-size:.75em;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}\n.body{padding:8px 14px 12px}\n.body h4{font-size:.85em;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:12px 0 4px}\n.body p{margin:4px 0}\ntable.evidence{border-collapse:collapse;width:100%;font-size:.92em}\ntable.evidence th,table.evidence td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line);overflow-wrap:anywhere}\ntable.evidence th{color:var(--muted);font-weight:600;white-space:nowrap}\ntable.evidence td:first-child{min-width:9em;width:30%}\n.cmd{position:relative}\n.cmd pre{margin:4px 0;padding:10px 12px;background:#1d2327;color:#f5f7f9;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;-webkit-print-color-adjust:exact;print-color-adjust:exact}\n.js .cmd pre{padding-right:5.5em}\n.cmd .copy{position:absolute;top:6px;right:6px}\n.reboot{color:var(--warn);font-weight:600}\n.meta{color:var(--muted);font-size:.85em;margin-top:10px}\nfooter{color:var(--muted);font-size:.85em;padding:20px 16px 30px}\n@media (max-width:900px){\ndl.facts{grid-template-columns:max-content minmax(0,1fr)}\n}\n@media (max-width:700px){\nbody{font-size:14px}\ndl.facts{gap:2px 10px;padding:10px}\ndetails.result>summary{display:block}\ndetails.result>summary>.dash{display:inline}\ndetails.result>summary::before{margin-right:6px}\ntable.evidence,table.evidence tbody,table.evidence tr,table.evidence td{display:block;width:100%}\ntable.evidence thead{display:none}\ntable.evidence td,table.evidence td:first-child{border:0;padding:1px 0;width:100%;min-width:0}\ntable.evidence tr{border-bottom:1px solid var(--line);padding:4px 0}\ntable.evidence td::before{content:attr(data-label) ": ";color:var(--muted)}\n.toolbar{position:static}\n}\n@media print{\nbody{font-size:10pt}\n.toolbar,.copy{display:none !important}\n.category[hidden],details.result[hidden]{display:block !important}\nli.fix,details.result{break-inside:avoid}\ndetails.result>summary{grid-template-columns:5.2em auto 5.6em auto 14em 1fr}\ndetails.result>summary::before{display:none}\n.js .cmd pre{padding-right:12px}\na{color:inherit;text-decoration:none}\n}',
    )
    l_0_css = (Markup if context.eval_ctx.autoescape else identity)(concat(t_7))
    context.vars['css'] = l_0_css
    context.exported_vars.add('css')
    t_8 = []
    pass
    t_8.append(
        '(function () {\n  "use strict";\n  /* Only adds to a page that is complete without it: the filters and the copy buttons. Where\n     scripts do not run (a CI server\'s sandbox CSP, a mail client) neither appears. */\n  var KNOWN = ["fail", "error", "warn", "waived", "skip", "pass"];\n  var GROUPS = { all: null, problems: ["fail", "error", "warn"] };\n  var root = document.documentElement;\n  root.classList.add("js");\n  var rows = Array.prototype.slice.call(document.querySelectorAll("details.result"));\n  var sections = Array.prototype.slice.call(document.querySelectorAll("section.category"));\n  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-filter]"));\n  var shown = document.getElementById("shown");\n  var toolbar = document.getElementById("toolbar");\n  if (toolbar) { toolbar.hidden = false; }\n\n  /* the filter lives in the URL fragment (#filter=fail or #filter=fail,error), so a link or a\n     bookmark opens the same view and a headless browser can be asked for it */\n  function current() {\n    var m = /(?:^#|[#&])filter=([a-z,]+)/.exec(window.location.hash || "");\n    if (!m) { return { key: "all", wanted: null }; }\n    if (Object.prototype.hasOwnProperty.call(GROUPS, m[1])) { return { key: m[1], wanted: GROUPS[m[1]] }; }\n    var wanted = m[1].split(",").filter(function (s) { return KNOWN.indexOf(s) >= 0; });\n    return wanted.length ? { key: wanted.join(","), wanted: wanted } : { key: "all", wanted: null };\n  }\n\n  function apply() {\n    var f = current();\n    var count = 0;\n    rows.forEach(function (row) {\n      var hide = f.wanted !== null && f.wanted.indexOf(row.getAttribute("data-status")) < 0;\n      row.hidden = hide;\n      if (!hide) { count += 1; }\n    });\n    sections.forEach(function (section) {\n      section.hidden = !section.querySelector("details.result:not([hidden])");\n    });\n    buttons.forEach(function (b) {\n      b.setAttribute("aria-pressed", b.getAttribute("data-filter") === f.key ? "true" : "false");\n    });\n    if (shown) { shown.textContent = count + " of " + rows.length + " shown"; }\n  }\n\n  buttons.forEach(function (b) {\n    b.addEventListener("click", function () {\n      var key = b.getAttribute("data-filter");\n      if (key === "all") {\n        history.replaceState(null, "", window.location.pathname + window.location.search);\n        apply();\n      } else {\n        window.location.hash = "filter=" + key;\n      }\n    });\n  });\n  window.addEventListener("hashchange", apply);\n\n  function setOpen(open) { rows.forEach(function (row) { row.open = open; }); }\n  var expand = document.getElementById("expand-all");\n  var collapse = document.getElementById("collapse-all");\n  if (expand) { expand.addEventListener("click", function () { setOpen(true); }); }\n  if (collapse) { collapse.addEventListener("click", function () { setOpen(false); }); }\n\n  /* printed, every finding is complete: open all rows, then restore what the reader had */\n  var wasOpen = [];\n  window.addEventListener("beforeprint", function () {\n    wasOpen = rows.map(function (row) { return row.open; });\n    setOpen(true);\n  });\n  window.addEventListener("afterprint", function () {\n    rows.forEach(function (row, i) { row.open = !!wasOpen[i]; });\n  });\n\n  function copied(button, ok) {\n    button.textContent = ok ? "Copied" : "Select";\n    window.setTimeout(function () { button.textContent = "Copy"; }, 1500);\n  }\n  function selectText(node) {\n    var range = document.createRange();\n    range.selectNodeContents(node);\n    var sel = window.getSelection();\n    sel.removeAllRanges();\n    sel.addRange(range);\n  }\n  /* the commands are plain text in a <pre>, selectable as they are; the button only saves the\n     selecting, so it is made here, where it can work */\n  document.querySelectorAll(".cmd").forEach(function (cmd) {\n    var pre = cmd.querySelector("pre");\n    if (!pre) { return; }\n    var button = document.createElement("button");\n    button.type = "button";\n    button.className = "copy";\n    button.textContent = "Copy";\n    button.setAttribute("aria-label", "Copy the commands");\n    cmd.appendChild(button);\n    button.addEventListener("click", function () {\n      var text = pre.textContent;\n      if (navigator.clipboard && window.isSecureContext) {\n        navigator.clipboard.writeText(text).then(function () { copied(button, true); },\n          function () { selectText(pre); copied(button, false); });\n      } else {\n        selectText(pre);\n        var ok = false;\n        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }\n        copied(button, ok);\n      }\n    });\n  });\n\n  apply();\n}());',
    )
    l_0_js = (Markup if context.eval_ctx.autoescape else identity)(concat(t_8))
    context.vars['js'] = l_0_js
    context.exported_vars.add('js')
    def macro(l_1_r):
        t_9 = []
        if l_1_r is missing:
            l_1_r = undefined("parameter 'r' was not provided", name='r')
        pass
        t_9.append(
            '<div class="cmd"><pre><code>',
        )
        l_2_loop = missing
        for l_2_c, l_2_loop in LoopContext(environment.getattr(environment.getattr(l_1_r, 'remediation'), 'commands'), undefined):
            _loop_vars = {}
            pass
            t_9.append(
                escape(t_4(l_2_c)),
            )
            if (not environment.getattr(l_2_loop, 'last')):
                pass
                t_9.append(
                    '\n',
                )
        l_2_loop = l_2_c = missing
        t_9.append(
            '</code></pre></div>',
        )
        return concat(t_9)
    context.exported_vars.add('commands')
    context.vars['commands'] = l_0_commands = Macro(environment, macro, 'commands', ('r',), False, False, False, context.eval_ctx.autoescape)
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src '
    yield escape(t_1((undefined(name='css') if l_0_css is missing else l_0_css)))
    yield '; script-src '
    yield escape(t_1((undefined(name='js') if l_0_js is missing else l_0_js)))
    yield '; base-uri \'none\'; form-action \'none\'">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="generator" content="hostaudit '
    yield escape(t_4(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'tool'), 'version')))
    yield '">\n<title>hostaudit: '
    yield escape(t_4((undefined(name='host') if l_0_host is missing else l_0_host)))
    yield ': '
    yield escape(environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'fail'))
    yield ' failed, '
    yield escape(environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'error'))
    yield ' errors, '
    yield escape(environment.getattr((undefined(name='summary') if l_0_summary is missing else l_0_summary), 'warn'))
    yield ' warnings</title>\n<style>'
    yield escape((undefined(name='css') if l_0_css is missing else l_0_css))
    yield '</style>\n</head>\n<body>\n<header>\n<h1>'
    yield escape(t_4((undefined(name='host') if l_0_host is missing else l_0_host)))
    yield '<span class="brk"> —</span> <span class="tool">hostaudit report</span></h1>\n<p class="summary" id="summary">\n<span class="total" data-summary="total">'
    yield escape((undefined(name='total') if l_0_total is missing else l_0_total))
    yield ' checks</span><span class="brk">: </span>'
    l_1_loop = missing
    for l_1_s, l_1_loop in LoopContext((undefined(name='statuses') if l_0_statuses is missing else l_0_statuses), undefined):
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
        if (not environment.getattr(l_1_loop, 'last')):
            pass
            yield '<span class="brk">,</span>'
    l_1_loop = l_1_s = missing
    yield '\n</p>\n<dl class="facts">\n<dt>Host</dt><dd id="fact-host">'
    yield escape(t_4((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'hostname') or 'unknown')))
    yield '</dd>\n<dt>OS</dt><dd id="fact-os">'
    yield escape(t_4((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'os') or 'unknown')))
    if environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'os_id'):
        pass
        yield ' ('
        yield escape(t_4(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'os_id')))
        yield ')'
    yield '</dd>\n<dt>Architecture</dt><dd id="fact-arch">'
    yield escape(t_4((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'arch') or 'unknown')))
    if environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'arch_source'):
        pass
        yield ' <span class="shown">('
        yield escape(t_4(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'arch_source')))
        yield ')</span>'
    yield '</dd>\n<dt>Kernel</dt><dd id="fact-kernel">'
    yield escape(t_4((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'kernel_release') or 'unknown')))
    if environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'kernel_release_source'):
        pass
        yield ' <span class="shown">('
        yield escape(t_4(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'kernel_release_source')))
        yield ')</span>'
    yield '</dd>\n<dt>Target</dt><dd id="fact-target">'
    yield escape(t_4(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'mode')))
    if ((environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'mode') != 'live') or (environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'root') != '/')):
        pass
        yield ' at <code>'
        yield escape(t_4(environment.getattr((undefined(name='t') if l_0_t is missing else l_0_t), 'root')))
        yield '</code>'
    yield '</dd>\n<dt>Profile</dt><dd id="fact-profile">'
    yield escape(t_4(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'profile')))
    yield '</dd>\n<dt>Audited</dt><dd id="fact-time"><time datetime="'
    yield escape(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'started_at'))
    yield '">'
    yield escape(t_4(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'started_at')))
    yield '</time> in '
    yield escape(t_2('%.0f', environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'duration_ms')))
    yield ' ms</dd>\n<dt>Tool</dt><dd id="fact-tool">hostaudit '
    yield escape(t_4(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'tool'), 'version')))
    yield '</dd>\n<dt>Exit code</dt><dd id="fact-exit">'
    yield escape(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'exit_code'))
    yield '</dd>\n<dt>Gate</dt><dd id="fact-gate" data-counting="'
    yield escape(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'gate'), 'counting'))
    yield '">'
    yield escape(t_4((undefined(name='gate_text') if l_0_gate_text is missing else l_0_gate_text)))
    yield '</dd>\n</dl>'
    if environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'problems'):
        pass
        yield '\n<div class="problems" id="problems"><strong>Problems (plugins, policy)</strong>\n<ul>'
        for l_1_p in environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'problems'):
            _loop_vars = {}
            pass
            yield '\n<li>'
            yield escape(t_4(l_1_p))
            yield '</li>'
        l_1_p = missing
        yield '\n</ul>\n</div>'
    yield '\n</header>\n<main>\n<section id="fix" aria-labelledby="fix-heading">\n<h2 id="fix-heading">What to fix <span class="counts">('
    yield escape(t_3(environment.getattr((undefined(name='fix') if l_0_fix is missing else l_0_fix), 'results')))
    yield ')</span></h2>'
    if (not environment.getattr((undefined(name='fix') if l_0_fix is missing else l_0_fix), 'results')):
        pass
        yield '\n<p class="lead">Nothing to fix: no failure, error or warning'
        if environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'gate'), 'required'):
            pass
            yield ', and every required check was checked'
        yield '.</p>'
    else:
        pass
        if environment.getattr((undefined(name='fix') if l_0_fix is missing else l_0_fix), 'root'):
            pass
            yield '\n<p class="lead" id="image-root">Image commands: &quot;$ROOT&quot; is the image root, here ROOT='
            yield escape(t_4(environment.getattr((undefined(name='fix') if l_0_fix is missing else l_0_fix), 'root')))
            yield '; hostaudit --fix-script writes them as a script that takes the root as its only argument.</p>'
        yield '\n<ol class="fixes">'
        for l_1_r in environment.getattr((undefined(name='fix') if l_0_fix is missing else l_0_fix), 'results'):
            _loop_vars = {}
            pass
            yield '\n<li class="fix st-'
            yield escape(environment.getattr(l_1_r, 'status'))
            yield '" id="fix-'
            yield escape(t_4(environment.getattr(l_1_r, 'id')))
            yield '" data-status="'
            yield escape(environment.getattr(l_1_r, 'status'))
            yield '" data-id="'
            yield escape(t_4(environment.getattr(l_1_r, 'id')))
            yield '" data-gate="'
            yield escape(environment.getattr(environment.getattr(l_1_r, 'gate'), 'status'))
            yield '" data-counts="'
            yield escape(('true' if environment.getattr(environment.getattr(l_1_r, 'gate'), 'counts') else 'false'))
            yield '">\n<h3 class="line"><span class="badge s-'
            yield escape(environment.getattr(l_1_r, 'status'))
            yield '">'
            yield escape(t_6(environment.getattr(l_1_r, 'status')))
            yield '</span><span class="sep"> · </span><span class="sev sev-'
            yield escape(environment.getattr(l_1_r, 'severity'))
            yield '">'
            yield escape(environment.getattr(l_1_r, 'severity'))
            yield '</span><span class="sep"> · </span><code class="id">'
            yield escape(t_4(environment.getattr(l_1_r, 'id')))
            yield '</code><span class="sep"> — </span><span class="title">'
            yield escape(t_4(environment.getattr(l_1_r, 'title')))
            yield '</span>'
            if environment.getattr(l_1_r, 'required'):
                pass
                yield ' <span class="req">required</span>'
            yield '</h3>\n<p class="msg">'
            if environment.getattr(environment.getattr(l_1_r, 'gate'), 'note'):
                pass
                yield '<span class="gate'
                if environment.getattr(environment.getattr(l_1_r, 'gate'), 'counts'):
                    pass
                    yield ' counts'
                yield '">'
                yield escape(t_4(environment.getattr(environment.getattr(l_1_r, 'gate'), 'note')))
                yield '</span>: '
            yield escape(t_4(environment.getattr(l_1_r, 'message')))
            yield '</p>'
            if environment.getattr(l_1_r, 'evidence'):
                pass
                yield '\n<ul class="evidence">'
                for l_2_e in environment.getattr(l_1_r, 'evidence'):
                    _loop_vars = {}
                    pass
                    yield '\n<li>read <code>'
                    yield escape(t_4(environment.getattr(l_2_e, 'source')))
                    yield '</code>: '
                    yield escape(t_4(environment.getattr(l_2_e, 'observed')))
                    if environment.getattr(l_2_e, 'expected'):
                        pass
                        yield ' <span class="expected">(expected '
                        yield escape(t_4(environment.getattr(l_2_e, 'expected')))
                        yield ')</span>'
                    yield '</li>'
                l_2_e = missing
                yield '\n</ul>'
            if environment.getattr(l_1_r, 'rationale'):
                pass
                yield '\n<p class="why"><span class="label">Why:</span> '
                yield escape(t_4(environment.getattr(l_1_r, 'rationale')))
                yield '</p>'
            if environment.getattr(l_1_r, 'remediation'):
                pass
                if environment.getattr(environment.getattr(l_1_r, 'remediation'), 'notes'):
                    pass
                    yield '\n<p class="notes"><span class="label">Fix:</span> '
                    yield escape(t_4(environment.getattr(environment.getattr(l_1_r, 'remediation'), 'notes')))
                    yield '</p>'
                elif environment.getattr(environment.getattr(l_1_r, 'remediation'), 'commands'):
                    pass
                    yield '\n<p class="notes"><span class="label">Fix:</span></p>'
                if environment.getattr(environment.getattr(l_1_r, 'remediation'), 'commands'):
                    pass
                    yield '\n'
                    yield escape(context.call((undefined(name='commands') if l_0_commands is missing else l_0_commands), l_1_r, _loop_vars=_loop_vars))
                if environment.getattr(environment.getattr(l_1_r, 'remediation'), 'reboot_required'):
                    pass
                    yield '\n<p class="reboot">A reboot is needed for this to take effect.</p>'
            yield '\n</li>'
        l_1_r = missing
        yield '\n</ol>'
    yield '\n</section>\n<section id="all" aria-labelledby="all-heading">\n<h2 id="all-heading">All results <span class="counts">('
    yield escape((undefined(name='total') if l_0_total is missing else l_0_total))
    yield ', by category)</span></h2>\n<nav class="toolbar" id="toolbar" aria-label="Filter results" hidden>\n<span class="label">Show</span>\n<button type="button" data-filter="all" aria-pressed="true">All ('
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
    yield '\n<span class="spacer"></span>\n<span class="shown" id="shown"></span>\n<button type="button" id="expand-all">Expand all</button>\n<button type="button" id="collapse-all">Collapse all</button>\n</nav>'
    if (not (undefined(name='groups') if l_0_groups is missing else l_0_groups)):
        pass
        yield '\n<p>No check ran.</p>'
    l_1_loop = missing
    for l_1_g, l_1_loop in LoopContext((undefined(name='groups') if l_0_groups is missing else l_0_groups), undefined):
        _loop_vars = {}
        pass
        yield '\n<section class="category" data-category="'
        yield escape(t_4(environment.getattr(l_1_g, 'category')))
        yield '">\n<h3 class="category-name">'
        yield escape(t_4(environment.getattr(l_1_g, 'category')))
        yield ' <span class="counts">('
        def t_10(fiter):
            for l_2_s in fiter:
                if environment.getitem(environment.getattr(l_1_g, 'counts'), l_2_s):
                    yield l_2_s
        l_2_loop = missing
        for l_2_s, l_2_loop in LoopContext(t_10((undefined(name='statuses') if l_0_statuses is missing else l_0_statuses)), undefined):
            _loop_vars = {}
            pass
            yield escape(environment.getitem(environment.getattr(l_1_g, 'counts'), l_2_s))
            yield ' '
            yield escape(l_2_s)
            if (not environment.getattr(l_2_loop, 'last')):
                pass
                yield ', '
        l_2_loop = l_2_s = missing
        yield ')</span></h3>'
        for l_2_r in environment.getattr(l_1_g, 'results'):
            _loop_vars = {}
            pass
            yield '\n<details class="result st-'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '" data-status="'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '" data-id="'
            yield escape(t_4(environment.getattr(l_2_r, 'id')))
            yield '" data-gate="'
            yield escape(environment.getattr(environment.getattr(l_2_r, 'gate'), 'status'))
            yield '" data-counts="'
            yield escape(('true' if environment.getattr(environment.getattr(l_2_r, 'gate'), 'counts') else 'false'))
            yield '" data-required="'
            yield escape(('true' if environment.getattr(l_2_r, 'required') else 'false'))
            yield '" id="check-'
            yield escape(t_4(environment.getattr(l_2_r, 'id')))
            yield '">\n<summary><span class="badge s-'
            yield escape(environment.getattr(l_2_r, 'status'))
            yield '">'
            yield escape(t_6(environment.getattr(l_2_r, 'status')))
            yield '</span><span class="sep"> · </span><span class="sev sev-'
            yield escape(environment.getattr(l_2_r, 'severity'))
            yield '">'
            yield escape(environment.getattr(l_2_r, 'severity'))
            yield '</span><span class="sep"> · </span><code class="id">'
            yield escape(t_4(environment.getattr(l_2_r, 'id')))
            yield '</code><span class="sep dash"> — </span><span class="what"><span class="title">'
            yield escape(t_4(environment.getattr(l_2_r, 'title')))
            yield '</span>'
            if environment.getattr(l_2_r, 'required'):
                pass
                yield ' <span class="req">required</span>'
            if environment.getattr(environment.getattr(l_2_r, 'gate'), 'note'):
                pass
                yield '<span class="brk">: </span><span class="gate'
                if environment.getattr(environment.getattr(l_2_r, 'gate'), 'counts'):
                    pass
                    yield ' counts'
                yield '">'
                yield escape(t_4(environment.getattr(environment.getattr(l_2_r, 'gate'), 'note')))
                yield '</span>'
            yield '<span class="brk">: </span><span class="msg">'
            yield escape(t_4(environment.getattr(l_2_r, 'message')))
            yield '</span></span></summary>\n<div class="body">'
            if environment.getattr(l_2_r, 'rationale'):
                pass
                yield '\n<p class="why">'
                yield escape(t_4(environment.getattr(l_2_r, 'rationale')))
                yield '</p>'
            if environment.getattr(l_2_r, 'evidence'):
                pass
                yield '\n<h4>Evidence</h4>\n<table class="evidence">\n<thead><tr><th>read</th><th>observed</th><th>expected</th></tr></thead>\n<tbody>'
                for l_3_e in environment.getattr(l_2_r, 'evidence'):
                    _loop_vars = {}
                    pass
                    yield '\n<tr><td data-label="read"><code>'
                    yield escape(t_4(environment.getattr(l_3_e, 'source')))
                    yield '</code></td><td data-label="observed">'
                    yield escape(t_4(environment.getattr(l_3_e, 'observed')))
                    yield '</td><td data-label="expected">'
                    yield escape(t_4((environment.getattr(l_3_e, 'expected') or '')))
                    yield '</td></tr>'
                l_3_e = missing
                yield '\n</tbody>\n</table>'
            if environment.getattr(l_2_r, 'remediation'):
                pass
                yield '\n<h4>Remediation</h4>'
                if environment.getattr(environment.getattr(l_2_r, 'remediation'), 'notes'):
                    pass
                    yield '\n<p class="notes">'
                    yield escape(t_4(environment.getattr(environment.getattr(l_2_r, 'remediation'), 'notes')))
                    yield '</p>'
                if environment.getattr(environment.getattr(l_2_r, 'remediation'), 'commands'):
                    pass
                    yield '\n'
                    yield escape(context.call((undefined(name='commands') if l_0_commands is missing else l_0_commands), l_2_r, _loop_vars=_loop_vars))
                if environment.getattr(environment.getattr(l_2_r, 'remediation'), 'reboot_required'):
                    pass
                    yield '\n<p class="reboot">A reboot is needed for this to take effect.</p>'
            if environment.getattr(l_2_r, 'waiver'):
                pass
                yield '\n<h4>Waiver</h4>\n<p class="waiver">'
                yield escape(t_4(environment.getattr(l_2_r, 'waiver')))
                yield '</p>'
            yield '\n<p class="meta">plugin '
            yield escape(t_4(environment.getattr(l_2_r, 'plugin')))
            yield ' · '
            yield escape(t_2('%.1f', environment.getattr(l_2_r, 'duration_ms')))
            yield ' ms</p>\n</div>\n</details>'
        l_2_r = missing
        yield '\n</section>'
    l_1_loop = l_1_g = missing
    yield '\n</section>\n</main>\n<footer>Generated by hostaudit '
    yield escape(t_4(environment.getattr(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'tool'), 'version')))
    yield ' (report schema '
    yield escape(environment.getattr((undefined(name='doc') if l_0_doc is missing else l_0_doc), 'schema_version'))
    yield '). Review every command before running it.</footer>\n<script>'
    yield escape((undefined(name='js') if l_0_js is missing else l_0_js))
    yield '</script>\n</body>\n</html>\n'

blocks = {}
debug_info = '13=54&14=57&15=60&16=68&126=76&237=79&238=88&245=107&247=111&248=113&249=121&253=123&255=125&256=128&257=132&261=152&262=154&263=161&264=168&265=175&266=182&267=184&268=190&269=192&270=194&272=198&275=201&276=205&284=210&285=212&286=215&288=221&289=224&292=227&293=231&294=243&295=259&296=270&298=273&299=277&303=288&304=291&306=293&307=295&308=298&309=300&312=303&313=306&315=307&325=314&328=316&329=318&330=320&331=324&338=332&341=336&342=340&343=342&344=344&346=360&347=364&348=378&350=405&351=408&353=410&358=413&359=417&364=425&366=428&367=431&369=433&370=436&372=437&376=440&378=443&380=446&388=454&389=458'