namespace Broker.Server.Hosting;

/// <summary>
/// Refuses to start a production broker that lacks a security setting, naming every missing
/// piece at once (each with a stable id). Nothing here is relaxed except by --dev.
/// </summary>
public static class StartupValidation
{
    public static IReadOnlyList<string> Problems(BrokerOptions options)
    {
        var problems = new List<string>(TokenLifetimeSettings.Problems(options).Concat(SettingRanges.Problems(options)));
        if (options.Approvals.SweepInterval <= TimeSpan.Zero)
        {
            problems.Add("BRK1013: Broker:Approvals:SweepInterval must be a positive duration, e.g. 00:00:10.");
        }

        if (!string.IsNullOrEmpty(options.Approvals.WebhookUrl))
        {
            if (!Uri.TryCreate(options.Approvals.WebhookUrl, UriKind.Absolute, out var hook)
                || !(hook.Scheme == Uri.UriSchemeHttps || (hook.Scheme == Uri.UriSchemeHttp && hook.IsLoopback)))
            {
                problems.Add("BRK1014: Broker:Approvals:WebhookUrl must be an https:// URL (http:// only on loopback).");
            }

            if (string.IsNullOrWhiteSpace(options.Approvals.WebhookKeyPath) || !File.Exists(options.Approvals.WebhookKeyPath) || new FileInfo(options.Approvals.WebhookKeyPath).Length < 32)
            {
                problems.Add("BRK1014: Broker:Approvals:WebhookKeyPath must name a file holding the webhook's shared HMAC key, at least 32 bytes.");
            }
        }

        problems.AddRange(OperatorTrust.Problems(options));
        if (options.Dev)
        {
            return problems;
        }

        if (string.IsNullOrWhiteSpace(options.Issuer) || !Uri.TryCreate(options.Issuer, UriKind.Absolute, out var issuer)
            || !(issuer.Scheme == Uri.UriSchemeHttps || (issuer.Scheme == Uri.UriSchemeHttp && issuer.IsLoopback)))
        {
            problems.Add("BRK1001: Broker:Issuer must be the broker's https:// URL (the iss of every token); http:// is accepted only on loopback.");
        }

        if (string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            problems.Add("BRK1002: Broker:Redis:Configuration is required; production state lives in Redis (use --dev for in-memory state).");
        }

        if (string.IsNullOrWhiteSpace(options.PolicyPath))
        {
            problems.Add("BRK1003: Broker:PolicyPath is required: the policy file declares trust domains, OIDC issuers and agent rules.");
        }
        else if (!File.Exists(options.PolicyPath))
        {
            problems.Add($"BRK1003: Broker:PolicyPath '{options.PolicyPath}' does not exist.");
        }

        if (options.Signing.Keys.Count == 0)
        {
            problems.Add("BRK1004: Broker:Signing:Keys needs at least one PEM EC private key (P-256 or P-384).");
        }

        foreach (var key in options.Signing.Keys.Where(k => !File.Exists(k.Path)))
        {
            problems.Add($"BRK1004: signing key file '{key.Path}' does not exist.");
        }

        if (string.IsNullOrWhiteSpace(options.Operators.Authority) && string.IsNullOrWhiteSpace(options.Operators.KeyFile))
        {
            problems.Add("BRK1006: Broker:Operators:Authority (your OIDC IdP) or Broker:Operators:KeyFile (trusted operator keys) is required: the admin API (revocation, approvals) authenticates operators with one of them.");
        }
        else if (!string.IsNullOrWhiteSpace(options.Operators.Authority) && string.Equals(options.Operators.Authority.TrimEnd('/'), options.Issuer.TrimEnd('/'), StringComparison.OrdinalIgnoreCase))
        {
            problems.Add("BRK1007: Broker:Operators:Authority must not be Broker's own issuer: agent credentials must never authorize admin calls.");
        }

        problems.AddRange(OperatorSeparation.Problems(options));

        if (string.IsNullOrWhiteSpace(options.AuditPath))
        {
            problems.Add("BRK1005: Broker:AuditPath is required: no credential is issued without a durable audit record.");
        }

        if (string.IsNullOrWhiteSpace(options.Audit.CheckpointKeyPath))
        {
            problems.Add("BRK1009: Broker:Audit:CheckpointKeyPath is required: closed audit segments are signed with this EC P-256 key (never the token-signing key).");
        }
        else if (!File.Exists(options.Audit.CheckpointKeyPath))
        {
            problems.Add($"BRK1009: audit checkpoint key file '{options.Audit.CheckpointKeyPath}' does not exist.");
        }

        return problems;
    }
}
