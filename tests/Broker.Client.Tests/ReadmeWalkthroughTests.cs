using System.Text;
using System.Text.RegularExpressions;

namespace Broker.Client.Tests;

/// <summary>
/// The README's dev-mode walkthrough, run as written with the built brokerctl against a real dev
/// broker: every example block marked <c>&lt;!-- brokerctl-example: NAME --&gt;</c> runs in
/// order, and each command's output (stderr, then stdout) must have the shape the README shows
/// (<see cref="OutputShape"/>). So the README and the program cannot drift apart.
/// </summary>
public sealed partial class ReadmeWalkthroughTests : IAsyncLifetime
{
    /// <summary>The walkthrough's blocks, in README order; a marker removed or renamed fails the test.</summary>
    private static readonly string[] Walkthrough =
        ["issue", "escalate", "decode", "execution", "approval", "end-task", "introspect-ended", "audit", "incident"];

    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(1);

    private readonly Dictionary<string, string> _variables = new(StringComparer.Ordinal);

    // README approval ids stand for the ones this run got (bound when an output line shows one).
    private readonly Dictionary<string, string> _approvalIds = new(StringComparer.Ordinal);
    private DevBroker _broker = null!;
    private ChildProcess? _job;
    private int _jobLinesSeen;
    private int _lastExitCode;

    public async Task InitializeAsync() => _broker = await DevBroker.StartAsync();

    public async Task DisposeAsync()
    {
        if (_job is not null)
        {
            await _job.DisposeAsync();
        }

        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task The_README_walkthrough_prints_what_the_README_shows()
    {
        var examples = ReadmeExamples.Parse(await File.ReadAllTextAsync(Path.Combine(Repository.Root, "README.md")));
        Assert.Equal(Walkthrough, examples.Select(e => e.Name).Where(Walkthrough.Contains));

        foreach (var example in examples.Where(e => Walkthrough.Contains(e.Name)))
        {
            foreach (var step in example.Steps)
            {
                var actual = step.Command is null ? await RestOfJobAsync() : await RunAsync(step.Command, step.Expected);
                var mismatch = OutputShape.Mismatch(step.Expected, actual);
                Assert.True(mismatch is null, $"README example '{example.Name}', $ {step.Command ?? "(the background command, continued)"}\n{mismatch}");
                BindApprovalIds(step.Expected, actual);
            }
        }
    }

    /// <summary>Runs one README command line; returns the lines it printed (stderr, then stdout).</summary>
    private async Task<IReadOnlyList<string>> RunAsync(string commandLine, IReadOnlyList<string> expected)
    {
        if (commandLine == "echo \"exit $?\"")
        {
            return [$"exit {_lastExitCode}"];
        }

        var assignment = Assignment().Match(commandLine);
        var command = assignment.Success ? assignment.Groups["command"].Value : commandLine;
        var background = command.EndsWith(" &", StringComparison.Ordinal);
        var args = BrokerctlArguments(Words(background ? command[..^2] : command), commandLine);
        if (background)
        {
            // It keeps running; what the README shows under it is what it printed so far.
            _job = ChildProcess.StartProgram("dotnet", Bound, [Brokerctl.Dll, .. args]);
            var shown = expected.Count(l => l != OutputShape.AnyLines);
            await Broker.Testing.Poll.UntilAsync(() => Lines(_job.Error).Count >= shown, $"'{commandLine}' printing {shown} lines", Bound);
            _jobLinesSeen = shown;
            return Lines(_job.Error).Take(shown).ToList();
        }

        var (code, stdout, stderr) = await Brokerctl.RunAsync(args);
        _lastExitCode = code;
        if (assignment.Success)
        {
            _variables[assignment.Groups["name"].Value] = stdout.Trim();
            return Lines(stderr);
        }

        return [.. Lines(stderr), .. Lines(stdout)];
    }

    private async Task<IReadOnlyList<string>> RestOfJobAsync()
    {
        Assert.NotNull(_job);
        _lastExitCode = await _job.ExitCodeAsync();
        return [.. Lines(_job.Error).Skip(_jobLinesSeen), .. Lines(_job.Out)];
    }

    /// <summary>brokerctl's arguments: the README's dev folder is this broker's, its approval ids this run's.</summary>
    private string[] BrokerctlArguments(List<string> words, string commandLine)
    {
        if (words is ["dotnet", "run", "--project", "broker/Broker.Cli", "--", ..])
        {
            words = ["brokerctl", .. words[5..]];
        }

        Assert.True(words.Count > 0 && words[0] == "brokerctl", $"a README example runs something other than brokerctl: {commandLine}");
        var args = words.Skip(1)
            .Select(w => _approvalIds.GetValueOrDefault(w, w))
            .Select(w => w.StartsWith(".dev/", StringComparison.Ordinal) ? Path.Combine(_broker.Directory, w[".dev/".Length..]) : w)
            .ToList();
        if (args.Contains("--dev"))
        {
            args.AddRange(["--dev-dir", _broker.Directory]);
        }

        return [.. args];
    }

    private void BindApprovalIds(IReadOnlyList<string> expected, IReadOnlyList<string> actual)
    {
        var shown = expected.SelectMany(l => ApprovalId().Matches(l)).Select(m => m.Value).ToList();
        var got = actual.SelectMany(l => ApprovalId().Matches(l)).Select(m => m.Value).ToList();
        foreach (var (readme, real) in shown.Zip(got))
        {
            _approvalIds.TryAdd(readme, real);
        }
    }

    /// <summary>The words of a command line as sh splits them: quotes, and $NAME inside double quotes or bare.</summary>
    private List<string> Words(string command)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < command.Length; i++)
        {
            var c = command[i];
            if (c == ' ')
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }

                continue;
            }

            inWord = true;
            if (c == '\'')
            {
                var end = command.IndexOf('\'', i + 1);
                word.Append(command, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                var end = command.IndexOf('"', i + 1);
                word.Append(Expand(command[(i + 1)..end]));
                i = end;
            }
            else if (c == '$')
            {
                var name = Variable().Match(command, i + 1).Value;
                word.Append(Expand("$" + name));
                i += name.Length;
            }
            else
            {
                word.Append(c);
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }

    private string Expand(string text) => Reference().Replace(text, m => _variables.TryGetValue(m.Groups[1].Value, out var value)
        ? value
        : throw new InvalidOperationException($"the README uses ${m.Groups[1].Value} before setting it"));

    private static List<string> Lines(string text) => text.ReplaceLineEndings("\n").Split('\n').Where(l => l.Trim().Length > 0).ToList();

    [GeneratedRegex(@"^(?<name>[A-Z_]+)=\$\((?<command>.*)\)$")]
    private static partial Regex Assignment();

    [GeneratedRegex(@"\G[A-Za-z_][A-Za-z0-9_]*")]
    private static partial Regex Variable();

    [GeneratedRegex(@"\$([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex Reference();

    [GeneratedRegex(@"apr_[0-9a-f]{32}")]
    private static partial Regex ApprovalId();
}
