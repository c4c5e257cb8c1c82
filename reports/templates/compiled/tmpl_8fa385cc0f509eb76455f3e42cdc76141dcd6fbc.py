from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'fleet.html'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_run = resolve('run')
    l_0_hosts = resolve('hosts')
    l_0_outcomes = resolve('outcomes')
    l_0_summary = resolve('summary')
    l_0_ids = resolve('ids')
    l_0_table = resolve('table')
    l_0_results = resolve('results')
    l_0_css = missing
    try:
        t_1 = environment.filters['csp_hash']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'csp_hash' found.")
    try:
        t_2 = environment.filters['length']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No filter named 'length' found.")
    try:
        t_3 = environment.filters['show']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'show' found.")
    try:
        t_4 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    pass
    t_5 = []
    pass
    t_5.append(
        ':root{--fg:#1d2327;--muted:#5f6b73;--bg:#fff;--panel:#f5f7f9;--line:#d9dee3;\n--fail:#b3261e;--error:#7b2cbf;--warn:#a15c00;--waived:#00707a;--skip:#8a949b;--pass:#1e7b34}\n*{box-sizing:border-box}\nbody{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}\nheader,main,footer{padding:0 16px}\nheader{padding-top:18px}\nh1{font-size:1.4em;margin:0 0 4px}\nh1 .tool{color:var(--muted);font-weight:400}\n.summary{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:10px 0}\n.badge{display:inline-block;padding:3px 11px;border-radius:999px;color:#fff;font-size:.85em;font-weight:700;text-transform:uppercase;-webkit-print-color-adjust:exact;print-color-adjust:exact}\n.badge.zero{opacity:.45}\n.o-failed{background:var(--fail)}.o-errored{background:var(--error)}.o-passed{background:var(--pass)}\n.line{color:var(--muted);margin:6px 0 12px}\ntable.matrix{border-collapse:collapse;font-size:.85em}\ntable.matrix th,table.matrix td{border:1px solid var(--line);padding:2px 5px;text-align:center;white-space:nowrap}\ntable.matrix thead th{position:sticky;top:0;background:var(--bg);vertical-align:bottom}\ntable.matrix thead th.id{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;font-weight:500;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}\ntable.matrix th.host{text-align:left;max-width:28em;overflow:hidden;text-overflow:ellipsis}\ntable.matrix td.result{font-weight:700;text-transform:uppercase;font-size:.8em}\ntd.r-failed{color:var(--fail)}td.r-errored{color:var(--error)}td.r-passed{color:var(--pass)}\ntd.s-fail{background:var(--fail);color:#fff}td.s-error{background:var(--error);color:#fff}\ntd.s-warn{background:#f6e3c3}td.s-waived{background:#cfe9eb}td.s-skip{color:var(--skip)}td.s-pass{background:#d7eedb;color:var(--pass)}\ntd.counts{outline:2px solid var(--fg);outline-offset:-2px;font-weight:700}\ntd.none{color:var(--muted)}\ntd.why{text-align:left;white-space:normal;color:var(--error)}\n.legend{color:var(--muted);font-size:.85em;margin:10px 0}\nfooter{color:var(--muted);font-size:.85em;padding:16px}',
    )
    l_0_css = (Markup if context.eval_ctx.autoescape else identity)(concat(t_5))
    context.vars['css'] = l_0_css
    context.exported_vars.add('css')
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src '
    yield escape(t_1((undefined(name='css') if l_0_css is missing else l_0_css)))
    yield '; script-src \'none\'; base-uri \'none\'; form-action \'none\'">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="generator" content="hostaudit '
    yield escape(t_3(environment.getattr((undefined(name='run') if l_0_run is missing else l_0_run), 'tool_version')))
    yield '">\n<title>hostaudit fleet: '
    yield escape((undefined(name='hosts') if l_0_hosts is missing else l_0_hosts))
    yield ' hosts, '
    yield escape(environment.getattr((undefined(name='outcomes') if l_0_outcomes is missing else l_0_outcomes), 'failed'))
    yield ' failed, '
    yield escape(environment.getattr((undefined(name='outcomes') if l_0_outcomes is missing else l_0_outcomes), 'errored'))
    yield ' errored</title>\n<style>'
    yield escape((undefined(name='css') if l_0_css is missing else l_0_css))
    yield '</style>\n</head>\n<body>\n<header>\n<h1><span class="tool">hostaudit fleet:</span> '
    yield escape((undefined(name='hosts') if l_0_hosts is missing else l_0_hosts))
    yield ' hosts</h1>\n<div class="summary">'
    for l_1_o in ('failed', 'errored', 'passed'):
        _loop_vars = {}
        pass
        yield '\n<span class="badge o-'
        yield escape(l_1_o)
        if (not environment.getitem((undefined(name='outcomes') if l_0_outcomes is missing else l_0_outcomes), l_1_o)):
            pass
            yield ' zero'
        yield '">'
        yield escape(environment.getitem((undefined(name='outcomes') if l_0_outcomes is missing else l_0_outcomes), l_1_o))
        yield ' '
        yield escape(l_1_o)
        yield '</span>'
    l_1_o = missing
    yield '\n</div>\n<p class="line">'
    yield escape(t_3((undefined(name='summary') if l_0_summary is missing else l_0_summary)))
    yield '; profile '
    yield escape(t_3(environment.getattr((undefined(name='run') if l_0_run is missing else l_0_run), 'profile')))
    yield '; started '
    yield escape(t_3(environment.getattr((undefined(name='run') if l_0_run is missing else l_0_run), 'started_at')))
    yield '</p>\n</header>\n<main>\n<p class="legend">Worst hosts first. A cell is a check\'s status on that host: F fail, E error, W warn, V waived, S skip, P pass; outlined: it counts towards exit code 1 (the gate). A host\'s name opens its own report.</p>\n<table class="matrix">\n<thead><tr><th class="host">host</th><th>result</th><th>counting</th>'
    for l_1_id in (undefined(name='ids') if l_0_ids is missing else l_0_ids):
        _loop_vars = {}
        pass
        yield '<th class="id" scope="col">'
        yield escape(l_1_id)
        yield '</th>'
    l_1_id = missing
    yield '</tr></thead>\n<tbody>'
    for l_1_t in (undefined(name='table') if l_0_table is missing else l_0_table):
        l_1_r = missing
        _loop_vars = {}
        pass
        l_1_r = environment.getattr(l_1_t, 'row')
        _loop_vars['r'] = l_1_r
        yield '\n<tr><th class="host" scope="row" title="'
        yield escape(t_3(environment.getattr((undefined(name='r') if l_1_r is missing else l_1_r), 'source')))
        yield '">'
        if environment.getattr(l_1_t, 'href'):
            pass
            yield '<a href="'
            yield escape(environment.getattr(l_1_t, 'href'))
            yield '">'
            yield escape(t_3(environment.getattr((undefined(name='r') if l_1_r is missing else l_1_r), 'name')))
            yield '</a>'
        else:
            pass
            yield escape(t_3(environment.getattr((undefined(name='r') if l_1_r is missing else l_1_r), 'name')))
        yield '</th><td class="result r-'
        yield escape(environment.getattr(l_1_t, 'outcome'))
        yield '">'
        yield escape(environment.getattr(l_1_t, 'outcome'))
        yield '</td>'
        if t_4(environment.getattr((undefined(name='r') if l_1_r is missing else l_1_r), 'error')):
            pass
            yield '<td>'
            yield escape(environment.getattr((undefined(name='r') if l_1_r is missing else l_1_r), 'counting'))
            yield '</td>'
            for l_2_c in environment.getattr(l_1_t, 'cells'):
                _loop_vars = {}
                pass
                yield '<td class="'
                yield escape(environment.getitem(l_2_c, 0))
                yield '" title="'
                yield escape(environment.getitem(l_2_c, 2))
                yield '">'
                yield escape(environment.getitem(l_2_c, 1))
                yield '</td>'
            l_2_c = missing
        else:
            pass
            yield '<td>-</td><td class="why" colspan="'
            yield escape((t_2((undefined(name='ids') if l_0_ids is missing else l_0_ids)) or 1))
            yield '">'
            yield escape(t_3(environment.getattr((undefined(name='r') if l_1_r is missing else l_1_r), 'error')))
            yield '</td>'
        yield '</tr>'
    l_1_t = l_1_r = missing
    yield '\n</tbody>\n</table>\n</main>\n<footer>hostaudit '
    yield escape(t_3(environment.getattr((undefined(name='run') if l_0_run is missing else l_0_run), 'tool_version')))
    yield '; '
    yield escape(environment.getattr((undefined(name='results') if l_0_results is missing else l_0_results), 'fail'))
    yield ' failed, '
    yield escape(environment.getattr((undefined(name='results') if l_0_results is missing else l_0_results), 'error'))
    yield ' errored, '
    yield escape(environment.getattr((undefined(name='results') if l_0_results is missing else l_0_results), 'warn'))
    yield ' warned, '
    yield escape(environment.getattr((undefined(name='results') if l_0_results is missing else l_0_results), 'pass'))
    yield ' passed results over all hosts.</footer>\n</body>\n</html>\n'

blocks = {}
debug_info = '5=48&38=52&40=54&41=56&42=62&46=64&48=66&49=70&52=81&57=87&59=95&60=99&61=102&62=119&63=138&68=145'