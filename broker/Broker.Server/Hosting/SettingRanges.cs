using Broker.Core.Audit;

namespace Broker.Server.Hosting;

/// <summary>
/// Numeric and shape checks on settings that have safe defaults but can be set to values that
/// silently break a promise (a node that is never current, an audit segment that never closes).
/// Checked in --dev too: each message names the setting and what it must be.
/// </summary>
public static class SettingRanges
{
    /// <summary>Largest Revoke batch a setting may allow; each selector is one durable write.</summary>
    public const int MaxRevocationBatch = 10_000;

    /// <summary>Smallest audit segment: below it a segment would close after every record or two.</summary>
    public const long MinSegmentBytes = 1024;

    public static IEnumerable<string> Problems(BrokerOptions options)
    {
        var revocation = options.Revocation;
        if (revocation.StalenessBound <= TimeSpan.Zero)
        {
            yield return $"BRK1200: Broker:Revocation:StalenessBound must be a positive duration, e.g. 00:00:02 (it is {revocation.StalenessBound}).";
        }
        else if (revocation.PollInterval <= TimeSpan.Zero || revocation.PollInterval >= revocation.StalenessBound)
        {
            yield return $"BRK1200: Broker:Revocation:PollInterval must be positive and shorter than Broker:Revocation:StalenessBound ({revocation.StalenessBound}), or a quiet node would count as stale between polls (it is {revocation.PollInterval}).";
        }

        if (revocation.MaxBatch is < 1 or > MaxRevocationBatch)
        {
            yield return $"BRK1201: Broker:Revocation:MaxBatch must be between 1 and {MaxRevocationBatch} (it is {revocation.MaxBatch}).";
        }

        var audit = options.Audit;
        if (audit.SegmentMaxBytes < MinSegmentBytes)
        {
            yield return $"BRK1202: Broker:Audit:SegmentMaxBytes must be at least {MinSegmentBytes} (it is {audit.SegmentMaxBytes}).";
        }

        if (audit.SegmentMaxAge <= TimeSpan.Zero)
        {
            yield return $"BRK1202: Broker:Audit:SegmentMaxAge must be a positive duration, the longest a segment's tail goes unsigned (it is {audit.SegmentMaxAge}).";
        }

        if (audit.MirrorMaxLength < 1)
        {
            yield return $"BRK1202: Broker:Audit:MirrorMaxLength must be at least 1 (it is {audit.MirrorMaxLength}).";
        }

        if (audit.HeadPublishInterval < TimeSpan.Zero || audit.HeadPublishInterval > TimeSpan.FromSeconds(1))
        {
            yield return $"BRK1202: Broker:Audit:HeadPublishInterval must be between 00:00:00 and 00:00:01, how far the head off the host may trail the log (it is {audit.HeadPublishInterval}).";
        }

        if (audit.VerifySegmentsAtStart < 0)
        {
            yield return $"BRK1202: Broker:Audit:VerifySegmentsAtStart must be 0 (every segment) or more (it is {audit.VerifySegmentsAtStart}).";
        }

        if (options.Issuance.RepeatFromMemoryMaxTasks is < 1 or > 10_000_000)
        {
            yield return $"BRK1246: Broker:Issuance:RepeatFromMemoryMaxTasks must be between 1 and 10000000 (it is {options.Issuance.RepeatFromMemoryMaxTasks}).";
        }

        if (options.RevocationMinReplicas < 0)
        {
            yield return $"BRK1203: Broker:RevocationMinReplicas must be 0 or more (it is {options.RevocationMinReplicas}).";
        }

        if (!string.IsNullOrWhiteSpace(options.NodeId) && !AuditChain.IsValidNodeId(options.NodeId))
        {
            yield return $"BRK1204: Broker:NodeId '{options.NodeId}' must be 1-64 characters of A-Z a-z 0-9 . _ - (it names audit segment files).";
        }

        if (options.Signing.PublishAhead < TimeSpan.Zero)
        {
            yield return $"BRK1205: Broker:Signing:PublishAhead must not be negative (it is {options.Signing.PublishAhead}).";
        }

        if (options.Signing.Keys.GroupBy(k => k.NotBefore).FirstOrDefault(g => g.Count() > 1) is { } clash)
        {
            yield return $"BRK1205: Broker:Signing:Keys has {clash.Count()} keys with the same NotBefore ({clash.Key?.ToString("u") ?? "none"}); each key must start signing at its own time.";
        }

        var operators = options.Operators;
        foreach (var (name, value) in new[] { ("Audience", operators.Audience), ("RolesClaim", operators.RolesClaim), ("NameClaim", operators.NameClaim) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                yield return $"BRK1206: Broker:Operators:{name} must not be empty.";
            }
        }
    }
}
