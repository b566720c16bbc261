using System.Text;
using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

/// <summary>A temporary folder per test, holding a policy file and the bundle files it references.</summary>
public sealed class PolicyTestDirectory : IDisposable
{
    public PolicyTestDirectory()
    {
        Path = Directory.CreateTempSubdirectory("broker-policy-").FullName;
    }

    public string Path { get; }

    public string PolicyPath => System.IO.Path.Combine(Path, "policy.yaml");

    /// <summary>Creates a (placeholder) file relative to the folder; the loader only checks it exists.</summary>
    public string Touch(string relativePath)
    {
        var full = System.IO.Path.Combine(Path, relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, "{}");
        return full;
    }

    /// <summary>
    /// A policy with one agent rule (planning only) and <paramref name="ruleKeys"/> inserted as
    /// rule keys on line 9, for tests of one key's loading and its error lines. Needs the bundle
    /// file <c>bundles/example.org.jwks</c> (<see cref="Touch"/>).
    /// </summary>
    public static string OneRulePolicy(string ruleKeys) => $"""
        version: 1
        trust:
          spiffe:
            - trust_domain: example.org
              jwt_bundle_file: bundles/example.org.jwks
        agents:
          - name: planner
            match: spiffe://example.org/agents/*
        {ruleKeys}
            phases:
              planning:
                scopes: [repo:read]
                audiences: [https://api.example.org]
                max_ttl: 5m
        """;

    public string WritePolicy(string yaml)
    {
        File.WriteAllText(PolicyPath, yaml, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        return PolicyPath;
    }

    /// <summary>Saves the way many editors do: write a temporary file, then rename it over the original.</summary>
    public void ReplacePolicyAtomically(string yaml)
    {
        var temp = System.IO.Path.Combine(Path, $".policy.yaml.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(temp, yaml, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.Move(temp, PolicyPath, overwrite: true);
    }

    public PolicyLoadResult Load(string yaml) => PolicyLoader.LoadFile(WritePolicy(yaml));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort; the OS cleans temp eventually.
        }
    }
}
