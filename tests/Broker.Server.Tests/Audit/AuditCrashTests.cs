using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Core.Audit;
using Broker.Testing;
using Broker.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Server.Tests.Audit;

/// <summary>
/// kill -9 of a real broker process while clients issue: every token a client received is in
/// the audit log, and the log verifies up to its last durable record.
/// </summary>
public sealed class AuditCrashTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("broker-crash-").FullName;
    private readonly StringBuilder _output = new();

    [Fact]
    public async Task Sigkill_during_load_loses_no_acknowledged_issuance()
    {
        var devDirectory = Path.Combine(_work, "dev");
        var acknowledged = new ConcurrentBag<(string TokenId, string AccessToken)>();

        using (var node = await StartNodeAsync(devDirectory))
        {
            using var channel = GrpcChannel.ForAddress(node.GrpcAddress);
            var client = new CredentialService.CredentialServiceClient(channel);
            using var load = new CancellationTokenSource(TimeSpan.FromSeconds(4));
            var callers = Enumerable.Range(0, 32).Select(caller => Task.Run(async () =>
            {
                for (var i = 0; !load.IsCancellationRequested; i++)
                {
                    try
                    {
                        var response = await client.IssueCredentialAsync(Request(devDirectory, $"crash-{caller}-{i}"), cancellationToken: load.Token);
                        acknowledged.Add((response.TokenId, response.AccessToken));
                    }
                    catch (RpcException)
                    {
                        if (node.Process.HasExited)
                        {
                            return;
                        }
                    }
                }
            })).ToList();

            // Let the load run, then SIGKILL the node in the middle of it.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            Assert.False(acknowledged.IsEmpty, "no issuance succeeded before the kill:\n" + Output());
            node.Process.Kill(entireProcessTree: true);
            await node.Process.WaitForExitAsync();
            await Task.WhenAll(callers);
        }

        var auditDirectory = Path.Combine(devDirectory, "audit");
        var afterCrash = AuditVerifier.Verify([auditDirectory], PublicKey(devDirectory));
        Assert.True(afterCrash.Ok, afterCrash.Problem?.ToString());

        // The restarted node seals what the crash left and continues the chain.
        string afterRestartToken;
        using (var node = await StartNodeAsync(devDirectory))
        {
            using var channel = GrpcChannel.ForAddress(node.GrpcAddress);
            var response = await new CredentialService.CredentialServiceClient(channel).IssueCredentialAsync(Request(devDirectory, "after-restart"));
            afterRestartToken = response.TokenId;
            node.Process.Kill(entireProcessTree: true);
            await node.Process.WaitForExitAsync();
        }

        var result = AuditVerifier.Verify([auditDirectory], PublicKey(devDirectory));
        Assert.True(result.Ok, result.Problem?.ToString());
        Assert.True(result.Checkpoints >= 1, "the crashed segment was not sealed at restart");

        var issuedIds = new HashSet<string>(StringComparer.Ordinal);
        var audit = new StringBuilder();
        foreach (var segment in AuditFiles.All(auditDirectory))
        {
            foreach (var line in File.ReadLines(segment.Path))
            {
                audit.AppendLine(line);
                if (line.Contains("\"type\":\"credential.issued\"", StringComparison.Ordinal)
                    && JsonDocument.Parse(line).RootElement.TryGetProperty("token_id", out var id))
                {
                    issuedIds.Add(id.GetString()!);
                }
            }
        }

        var missing = acknowledged.Where(a => !issuedIds.Contains(a.TokenId)).Select(a => a.TokenId).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} of {acknowledged.Count} acknowledged issuances missing from the audit log: {string.Join(", ", missing.Take(5))}");
        Assert.Contains(afterRestartToken, issuedIds);

        // Canary: no credential handed out appears in the audit log or the node's own logs.
        var logs = Output();
        foreach (var (_, token) in acknowledged.Take(200))
        {
            var signature = token.Split('.')[2];
            Assert.DoesNotContain(signature, audit.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(signature, logs, StringComparison.Ordinal);
        }
    }

    private static ECDsa PublicKey(string devDirectory)
    {
        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(Path.Combine(devDirectory, "trust", "audit-checkpoint.pub.pem")));
        return key;
    }

    /// <summary>A fresh JWT-SVID from the dev trust domain's key for each request.</summary>
    private static IssueCredentialRequest Request(string devDirectory, string task)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(devDirectory, "dev.json")))!;
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(manifest["trust_key_file"]!.GetValue<string>()));
        var now = DateTimeOffset.UtcNow;
        var header = new JsonObject { ["alg"] = "ES256", ["kid"] = manifest["trust_key_id"]!.GetValue<string>(), ["typ"] = "JWT" };
        var payload = new JsonObject
        {
            ["sub"] = "spiffe://dev.local/agents/crash",
            ["aud"] = manifest["audience"]!.GetValue<string>(),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.AddMinutes(5).ToUnixTimeSeconds(),
        };
        var input = TestTrustDomain.Encode(header.ToJsonString()) + "." + TestTrustDomain.Encode(payload.ToJsonString());
        var svid = input + "." + System.Buffers.Text.Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256));
        return new IssueCredentialRequest
        {
            TaskId = task,
            Phase = Phase.Planning,
            Scopes = { "repo:read" },
            Audience = "https://api.dev.local",
            Attestation = new AttestationProof { JwtSvid = svid },
        };
    }

    /// <summary>Starts the built Broker.Server in --dev as a child process and waits until it serves.</summary>
    private async Task<Node> StartNodeAsync(string devDirectory)
    {
        var grpcPort = RedisServer.FreePort();
        var httpPort = RedisServer.FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "Broker.Server.dll"), "--dev", "--dev-dir", devDirectory, "--grpc-port", grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--http-port", httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            WorkingDirectory = _work,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            Assert.False(process.HasExited, "the broker exited at start:\n" + Output());
            try
            {
                if ((await http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}/healthz"))).IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, "the broker did not become healthy:\n" + Output());
            await Task.Delay(100);
        }

        return new Node(process, $"http://127.0.0.1:{grpcPort}");
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed record Node(Process Process, string GrpcAddress) : IDisposable
    {
        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit();
            }

            Process.Dispose();
        }
    }
}
