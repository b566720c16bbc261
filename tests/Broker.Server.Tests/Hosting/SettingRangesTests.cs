using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.Hosting;

/// <summary>Settings with safe defaults that a typo could turn into a broken promise are refused at start, naming the setting.</summary>
public sealed class SettingRangesTests : IDisposable
{
    private readonly PolicyOnDisk _policy = new();

    public void Dispose() => _policy.Dispose();

    [Theory]
    [InlineData("Broker:Revocation:StalenessBound", "00:00:00", "BRK1200")]
    [InlineData("Broker:Revocation:PollInterval", "00:00:05", "BRK1200")]
    [InlineData("Broker:Revocation:PollInterval", "-00:00:01", "BRK1200")]
    [InlineData("Broker:Revocation:MaxBatch", "0", "BRK1201")]
    [InlineData("Broker:Revocation:MaxBatch", "1000000", "BRK1201")]
    [InlineData("Broker:Audit:SegmentMaxBytes", "10", "BRK1202")]
    [InlineData("Broker:Audit:SegmentMaxAge", "00:00:00", "BRK1202")]
    [InlineData("Broker:Audit:MirrorMaxLength", "0", "BRK1202")]
    [InlineData("Broker:Audit:VerifySegmentsAtStart", "-1", "BRK1202")]
    [InlineData("Broker:Audit:HeadPublishInterval", "00:00:05", "BRK1202")]
    [InlineData("Broker:RevocationMinReplicas", "-1", "BRK1203")]
    [InlineData("Broker:NodeId", "node/../../etc", "BRK1204")]
    [InlineData("Broker:Signing:PublishAhead", "-01:00:00", "BRK1205")]
    [InlineData("Broker:Operators:RolesClaim", " ", "BRK1206")]
    [InlineData("Broker:Issuance:RepeatFromMemoryMaxTasks", "0", "BRK1246")]
    public async Task Start_up_refuses_a_setting_out_of_range_naming_it(string key, string value, string id)
    {
        var refused = await Assert.ThrowsAsync<BrokerStartupException>(() => _policy.StartAsync(new Dictionary<string, string?> { [key] = value }));

        var problem = Assert.Single(refused.Problems);
        Assert.StartsWith(id + ":", problem, StringComparison.Ordinal);
        Assert.Contains(key, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_pass_and_dev_is_checked_too()
    {
        Assert.Empty(SettingRanges.Problems(new BrokerOptions()));

        var dev = new BrokerOptions { Dev = true, Revocation = { PollInterval = TimeSpan.FromSeconds(3) } };
        Assert.Contains(StartupValidation.Problems(dev), p => p.StartsWith("BRK1200", StringComparison.Ordinal));
    }
}
