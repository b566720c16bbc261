namespace Broker.Server.OperatorConsole;

/// <summary>The console's only stylesheet, served from the console itself (the CSP allows no other style source).</summary>
internal static class ConsoleStylesheet
{
    public const string Css = """
        :root { --ink: #1d2330; --muted: #5b6474; --line: #d9dee7; --bg: #f5f7fa; --accent: #1f5fbf; --bad: #b3261e; --good: #1e7a3c; --warn: #8a5a00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
        header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #152033; color: #fff; }
        header .brand { font-weight: 700; letter-spacing: .02em; }
        header nav { display: flex; gap: 16px; flex: 1; }
        header a { color: #cfe0ff; text-decoration: none; }
        header a.current { color: #fff; border-bottom: 2px solid #fff; }
        header .who { color: #cfd6e2; }
        header form { margin: 0; }
        main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 48px; }
        h1 { font-size: 20px; margin: 4px 0 16px; }
        h2 { font-size: 16px; margin: 24px 0 8px; }
        section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; }
        table { width: 100%; border-collapse: collapse; }
        th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
        td.detail { max-width: 320px; }
        th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
        code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; overflow-wrap: anywhere; }
        .muted { color: var(--muted); }
        .notice { padding: 10px 14px; border-radius: 6px; margin-bottom: 16px; border: 1px solid; }
        .notice.ok { background: #eaf6ee; border-color: #b7dfc3; color: var(--good); }
        .notice.error { background: #fdecea; border-color: #f3b8b3; color: var(--bad); }
        .notice.warn { background: #fff6e0; border-color: #f0d79a; color: var(--warn); }
        .pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; background: #e8edf5; white-space: nowrap; }
        .pill.high, .pill.critical, .pill.frozen { background: #fdecea; color: var(--bad); }
        .pill.medium { background: #fff6e0; color: var(--warn); }
        .pill.low, .pill.none { background: #eaf6ee; color: var(--good); }
        form.inline { display: inline-flex; gap: 6px; align-items: center; margin: 2px 0; }
        form.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; align-items: end; }
        label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
        label.check { flex-direction: row; align-items: center; gap: 6px; color: var(--ink); font-size: 14px; }
        input, select { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; color: var(--ink); }
        button { font: inherit; padding: 5px 12px; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
        button.secondary { background: #fff; color: var(--accent); }
        button.danger { background: var(--bad); border-color: var(--bad); }
        header button { background: transparent; border-color: #5d6d88; color: #cfe0ff; padding: 3px 10px; }
        .signin { max-width: 420px; margin: 48px auto; }
        """;
}
