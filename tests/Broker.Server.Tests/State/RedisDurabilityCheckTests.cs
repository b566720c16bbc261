using Broker.Redis;
using Broker.Server.Tests.Infrastructure;
using StackExchange.Redis;

namespace Broker.Server.Tests.State;

[Collection(RedisCollection.Name)]
public sealed class RedisDurabilityCheckTests(RedisFixture redis)
{
    [Fact]
    public async Task Aof_with_fsync_always_passes_and_weaker_settings_are_named()
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);

        var good = await RedisDurabilityCheck.ProblemsAsync(admin, minReplicas: 0);
        await server.ConfigSetAsync("appendfsync", "everysec");
        IReadOnlyList<string> weak;
        try
        {
            weak = await RedisDurabilityCheck.ProblemsAsync(admin, minReplicas: 0);
        }
        finally
        {
            await server.ConfigSetAsync("appendfsync", "always");
        }

        Assert.Empty(good);
        Assert.Contains(weak, p => p.StartsWith("BRK2002", StringComparison.Ordinal));
    }

    /// <summary>The configuration string the README tells users to write (its secrets and TLS dropped, its host this test's Redis) is checked, not answered with BRK2000.</summary>
    [Fact]
    public async Task The_readme_configuration_lets_the_check_read_the_settings()
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot(), "README.md"));
        var row = readme.Split('\n').Single(l => l.StartsWith("| `Broker:Redis:Configuration` |", StringComparison.Ordinal));
        var example = System.Text.RegularExpressions.Regex.Match(row, "e\\.g\\. `(?<config>[^`]+)`").Groups["config"].Value;
        var options = ConfigurationOptions.Parse(example);
        options.EndPoints.Clear();
        options.EndPoints.Add(ConfigurationOptions.Parse(redis.Server.Configuration).EndPoints[0]);
        options.Ssl = false;
        options.Password = null;

        await using var connection = await ConnectionMultiplexer.ConnectAsync(options);
        var problems = await RedisDurabilityCheck.ProblemsAsync(connection, minReplicas: 0);

        Assert.DoesNotContain(problems, p => p.StartsWith("BRK2000", StringComparison.Ordinal));
        Assert.Empty(problems);
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

        throw new InvalidOperationException("repository root not found");
    }

    [Fact]
    public async Task Without_admin_rights_the_check_says_it_could_not_read_the_configuration()
    {
        var problems = await RedisDurabilityCheck.ProblemsAsync(redis.Connection, minReplicas: 0);

        Assert.Contains(problems, p => p.StartsWith("BRK2000", StringComparison.Ordinal));
    }
}
