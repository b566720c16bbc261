using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

/// <summary>The shipped reference policy stays valid as the format evolves.</summary>
public sealed class SamplePolicyTests : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_sample_policy_loads_once_its_bundle_files_exist()
    {
        var sample = Path.Combine(FindRepositoryRoot(), "deploy", "policy", "sample-policy.yaml");
        File.Copy(sample, _dir.PolicyPath);
        _dir.Touch("bundles/example.org.jwks");
        _dir.Touch("bundles/example.org.pem");
        _dir.Touch("bundles/cluster-sa.jwks");

        var policy = PolicyAssert.Loaded(PolicyLoader.LoadFile(_dir.PolicyPath));

        Assert.Equal(["deployer", "triage"], policy.Agents.Select(a => a.Name));
        Assert.All(policy.Agents, a => Assert.Equal(3, a.Phases.Count));
        Assert.Equal("deployer", policy.FindRule(new Broker.Core.Attestation.WorkloadIdentity("spiffe://example.org/agents/deployer/prod-1", Broker.Core.Attestation.AttestationKind.JwtSvid, "example.org", DateTimeOffset.MaxValue))!.Name);
        Assert.Equal("triage", policy.FindRule(new Broker.Core.Attestation.WorkloadIdentity("k8s:system:serviceaccount:ops:triage", Broker.Core.Attestation.AttestationKind.OidcToken, "https://kubernetes.default.svc.cluster.local", DateTimeOffset.MaxValue))!.Name);
    }

    [Fact]
    public void The_sample_policy_names_its_missing_bundle_files()
    {
        var sample = Path.Combine(FindRepositoryRoot(), "deploy", "policy", "sample-policy.yaml");
        File.Copy(sample, _dir.PolicyPath);

        var result = PolicyLoader.LoadFile(_dir.PolicyPath);

        Assert.Equal(3, result.Errors.Count);
        Assert.All(result.Errors, e => Assert.Contains("does not exist", e.Message, StringComparison.Ordinal));
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")) || File.Exists(Path.Combine(dir.FullName, "Broker.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (Broker.sln) not found above " + AppContext.BaseDirectory);
    }
}
