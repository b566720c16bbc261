namespace Broker.Client.Tests;

/// <summary><c>brokerctl audit tail|query</c> without PATH: the broker's AuditService, role auditor.</summary>
public sealed class AuditRemoteTests : IAsyncLifetime
{
    private DevBroker _broker = null!;

    public async Task InitializeAsync() => _broker = await DevBroker.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Query_and_tail_ask_the_broker()
    {
        var issued = await Cli.RunAsync("issue", "--dev", "--dev-dir", _broker.Directory, "--agent", "spiffe://dev.local/agents/demo", "--task", "remote-audit",
            "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only");
        Assert.Equal(0, issued.ExitCode);

        var query = await Cli.RunAsync("audit", "query", "--dev", "--dev-dir", _broker.Directory, "--task", "remote-audit", "--output", "json");
        Assert.Equal(0, query.ExitCode);
        var lines = query.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Contains("\"type\":\"credential.issued\"", StringComparison.Ordinal) && l.Contains("\"task_id\":\"remote-audit\"", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Contains("remote-audit", l, StringComparison.Ordinal));

        var tail = await Cli.RunAsync("audit", "tail", "--dev", "--dev-dir", _broker.Directory, "-n", "1");
        Assert.Equal(0, tail.ExitCode);
        Assert.Contains("credential.issued", tail.Out, StringComparison.Ordinal);
        Assert.Contains("remote-audit", tail.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_against_the_brokers_signed_head_catches_the_newest_records_cut_from_the_open_segment()
    {
        var issued = await Cli.RunAsync("issue", "--dev", "--dev-dir", _broker.Directory, "--agent", "spiffe://dev.local/agents/demo", "--task", "head-audit",
            "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only");
        Assert.Equal(0, issued.ExitCode);
        var head = await Cli.RunAsync("audit", "head", "--dev", "--dev-dir", _broker.Directory);
        Assert.Equal(0, head.ExitCode);
        var headFile = Path.Combine(_broker.Directory, "heads.jsonl");
        await File.WriteAllTextAsync(headFile, head.Out);

        // A copy of the log with its newest record cut: the open segment's tail is not signed yet.
        var copy = Directory.CreateTempSubdirectory("brokerctl-cut-").FullName;
        try
        {
            // The running node holds .lock exclusively; a copy has no use for it.
            foreach (var file in Directory.GetFiles(_broker.Manifest.AuditFile).Where(f => Path.GetFileName(f) != Broker.Core.Audit.AuditFolderLock.FileName))
            {
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            }

            Assert.Equal(0, (await Cli.RunAsync("audit", "verify", copy, "--fetch-head", "--dev", "--dev-dir", _broker.Directory)).ExitCode);
            var newest = Broker.Core.Audit.AuditFiles.All(copy)[^1].Path;
            var lines = await File.ReadAllLinesAsync(newest);
            await File.WriteAllTextAsync(newest, string.Join('\n', lines[..^1]) + "\n");
            Assert.Equal(0, (await Cli.RunAsync("audit", "verify", copy)).ExitCode);

            var fromFile = await Cli.RunAsync("audit", "verify", copy, "--expect-head", headFile);
            var fromBroker = await Cli.RunAsync("audit", "verify", copy, "--fetch-head", "--dev", "--dev-dir", _broker.Directory);

            foreach (var run in new[] { fromFile, fromBroker })
            {
                Assert.Equal(1, run.ExitCode);
                Assert.Contains($"TAMPERED: {newest}:{lines.Length}: seq ", run.Out, StringComparison.Ordinal);
                Assert.Contains("signed head is at seq", run.Out, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public async Task Tail_follow_prints_records_as_the_broker_writes_them_until_interrupted()
    {
        var stdout = new SyncWriter();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var context = new Broker.Cli.CliContext(stdout, new StringWriter(), new StringReader(""), TimeProvider.System, _ => null);
        var following = Broker.Cli.BrokerCtl.RunAsync(["audit", "tail", "--dev", "--dev-dir", _broker.Directory, "-n", "1", "--follow", "--output", "json"], context, stop.Token);

        // Written after the follow began: it must arrive on the open stream.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!stdout.Text.Contains("follow-later", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            var issued = await Cli.RunAsync("issue", "--dev", "--dev-dir", _broker.Directory, "--agent", "spiffe://dev.local/agents/demo", "--task", "follow-later",
                "--phase", "planning", "--scope", "repo:read", "--audience", "https://api.dev.local", "--token-only");
            Assert.Equal(0, issued.ExitCode);
            await Task.Delay(200);
        }

        Assert.Contains(stdout.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("\"type\":\"credential.issued\"", StringComparison.Ordinal) && l.Contains("follow-later", StringComparison.Ordinal));
        Assert.False(following.IsCompleted, "--follow ended by itself");

        await stop.CancelAsync();
        Assert.Equal(0, await following);
    }

    [Fact]
    public async Task Tail_follow_on_files_is_a_usage_error()
    {
        var run = await Cli.RunAsync("audit", "tail", Path.Combine(_broker.Directory, "audit"), "--follow");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("tail -f", run.Error, StringComparison.Ordinal);
    }

    /// <summary>A writer the test can read while the command is still writing to it.</summary>
    private sealed class SyncWriter : StringWriter
    {
        private readonly Lock _lock = new();

        public string Text
        {
            get
            {
                lock (_lock)
                {
                    return ToString();
                }
            }
        }

        public override void Write(char value)
        {
            lock (_lock)
            {
                base.Write(value);
            }
        }

        public override void Write(string? value)
        {
            lock (_lock)
            {
                base.Write(value);
            }
        }

        public override void WriteLine(string? value)
        {
            lock (_lock)
            {
                base.WriteLine(value);
            }
        }
    }

    [Fact]
    public async Task A_path_and_a_broker_together_are_a_usage_error()
    {
        var run = await Cli.RunAsync("audit", "query", _broker.Directory, "--dev", "--dev-dir", _broker.Directory);

        Assert.Equal(2, run.ExitCode);
    }
}
