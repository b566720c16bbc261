using System.Data.Common;

namespace Broker.Server.Hosting;

/// <summary>
/// <c>--dev --postgres &lt;connection&gt;</c>: the dev policy plus an <c>orders-db</c> engine on a local
/// PostgreSQL (docs/secrets.md, README). The password in the connection goes to a file under the
/// dev folder (owner-only), and the policy references it, as production policy must.
/// </summary>
public static class DevPostgres
{
    public const string Engine = "orders-db";

    /// <summary>Writes the secret's file and the dev policy with secrets; returns the policy path.</summary>
    public static string WritePolicy(string devRoot, string connection)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = connection };
        var password = "";
        foreach (var key in builder.Keys.Cast<string>().ToList())
        {
            if (key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant() is "password" or "pwd")
            {
                password = builder[key]?.ToString() ?? "";
                builder.Remove(key);
            }
        }

        var passwordFile = Path.Combine(devRoot, "trust", "postgres-admin.pw");
        Directory.CreateDirectory(Path.GetDirectoryName(passwordFile)!);
        File.WriteAllText(passwordFile, password);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var policyPath = Path.Combine(devRoot, "policy-postgres.yaml");
        File.WriteAllText(policyPath, Policy(builder.ConnectionString.Replace("\"", "", StringComparison.Ordinal), passwordFile));
        return policyPath;
    }

    private static string Policy(string connection, string passwordFile) => $"""
        # Dev policy with a PostgreSQL engine, written by `broker --dev --postgres ...`.
        # Create the roles it grants first (README, "Database logins for one phase").
        version: 1
        trust:
          spiffe:
            - trust_domain: dev.local
              jwt_bundle_file: trust/dev.local.jwks
              refresh: 30s
        secret_engines:
          - name: {Engine}
            type: postgres
            connection: "{connection}"
            admin_password_file: {passwordFile}
        agents:
          - name: dev-agents
            match: spiffe://dev.local/agents/*
            phases:
              planning:
                scopes: [repo:read, tickets:read, logs:read]
                audiences: [https://api.dev.local]
                max_ttl: 10m
                secrets:
                  - engine: {Engine}
                    role: orders_reader
                    max_lease_ttl: 10m
              execution:
                scopes: [repo:read, deploy:staging, deploy:prod]
                audiences: [https://api.dev.local]
                max_ttl: 5m
                on_unknown_risk: allow
                gated_scopes:
                  - scopes: [deploy:prod]
                    approvers: [approver]
                secrets:
                  - engine: {Engine}
                    role: orders_writer
                    max_lease_ttl: 5m
                    gated:
                      approvers: [approver]
        """;
}
