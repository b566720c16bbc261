using System.Text.Json;
using Broker.Testing;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// Runs <c>tests/interop/node/agent.mjs</c>, an agent built on the stock oauth4webapi client,
/// against a broker, and returns the JSON it prints. Missing Node.js or packages fail the test
/// with what to install: an interop test that silently skips proves nothing.
/// </summary>
public static class NodeOAuthClient
{
    public static string Directory { get; } = Path.Combine(RepositoryRoot(), "tests", "interop", "node");

    /// <summary>Runs the agent with <paramref name="environment"/>; a non-zero exit fails the test with the client's own error.</summary>
    public static async Task<JsonElement> RunAsync(IReadOnlyDictionary<string, string> environment)
    {
        if (!File.Exists(Path.Combine(Directory, "node_modules", "oauth4webapi", "package.json")))
        {
            Assert.Fail($"The Node OAuth client's packages are not installed: run 'npm ci' in {Directory} (./test.sh does).");
        }

        var run = await NodeProcess.RunAsync(["agent.mjs"], Directory, environment: environment);
        Assert.True(run.ExitCode == 0, $"agent.mjs exited {run.ExitCode}:\n{run.Error}\n{run.Output}");
        return JsonDocument.Parse(run.Output).RootElement.Clone();
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (Broker.sln) not found above " + AppContext.BaseDirectory);
    }
}
