namespace Broker.Server.Tests.Failover;

/// <summary>
/// artifacts/failover-report.txt, one section per failover topology (a section starts with a
/// "==== title ====" line). The first section a test run writes replaces whatever an earlier run
/// left; later ones in the same run are added (or replace their own title), so one run of the
/// failover tests leaves one section per test that ran and test.sh prints them all.
/// </summary>
internal static class FailoverReport
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static bool _writtenThisRun;

    public static async Task WriteSectionAsync(string title, string section)
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Broker.sln")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            return;
        }

        var artifacts = Directory.CreateDirectory(Path.Combine(root.FullName, "artifacts"));
        var path = Path.Combine(artifacts.FullName, "failover-report.txt");
        await Gate.WaitAsync();
        try
        {
            var sections = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (_writtenThisRun && File.Exists(path))
            {
                foreach (var existing in Split(await File.ReadAllTextAsync(path)))
                {
                    sections[existing.Title] = existing.Text;
                }
            }

            sections[title] = section.TrimEnd() + "\n";
            await File.WriteAllTextAsync(path, string.Join('\n', sections.Values));
            _writtenThisRun = true;
        }
        finally
        {
            Gate.Release();
        }
    }

    private static IEnumerable<(string Title, string Text)> Split(string report)
    {
        string? title = null;
        var text = new System.Text.StringBuilder();
        foreach (var line in report.Split('\n'))
        {
            if (line.StartsWith("==== ", StringComparison.Ordinal) && line.EndsWith(" ====", StringComparison.Ordinal))
            {
                if (title is not null)
                {
                    yield return (title, text.ToString().TrimEnd() + "\n");
                }

                title = line[5..^5];
                text.Clear();
            }

            if (title is not null)
            {
                text.Append(line).Append('\n');
            }
        }

        if (title is not null)
        {
            yield return (title, text.ToString().TrimEnd() + "\n");
        }
    }
}
