using System.Security.Cryptography;
using System.Text;

namespace Broker.Core.Audit;

/// <summary>
/// Start-up found the node's own log tampered with (BRK1040): nothing was changed or signed, and
/// the node does not start until an operator acknowledges exactly these findings.
/// </summary>
public sealed class AuditTamperedException(string directory, string node, IReadOnlyList<AuditProblem> findings)
    : Exception(Describe(directory, node, findings))
{
    public const string Id = "BRK1040";

    public IReadOnlyList<AuditProblem> Findings { get; } = findings;

    /// <summary>What <c>--acknowledge-tamper</c> must name: a digest of exactly these findings.</summary>
    public string Fingerprint { get; } = FingerprintOf(findings);

    /// <summary>The first 16 hex digits of SHA-256 over the findings' keys, one per line.</summary>
    public static string FingerprintOf(IEnumerable<AuditProblem> findings) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', findings.Select(f => f.Key)))))[..16];

    private static string Describe(string directory, string node, IReadOnlyList<AuditProblem> findings) =>
        $"{Id}: the audit log of node {node} in '{directory}' was tampered with ({findings.Count} finding(s); first: {findings[0].Key}); "
        + $"nothing was changed. List them with 'brokerctl audit verify {directory}'; to start anyway and record them in an "
        + $"audit.tamper_acknowledged record, start with --acknowledge-tamper {FingerprintOf(findings)}.";
}
