using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Broker.Core.Policy;
using Broker.Redis;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using StackExchange.Redis;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;

namespace Broker.Server.Tests.Deploy;

/// <summary>
/// What can be checked here about deploy/ without a container engine or a Kubernetes cluster:
/// the image definition's shape, the manifests parse and carry what the docs promise, the
/// policies they ship validate, Sentinel connectivity through the configuration string the
/// manifests use, and the local script really brings up a cluster and ends exactly what it started.
/// </summary>
public sealed partial class DeployArtifactsTests
{
    private static readonly string Repo = FindRepoRoot();
    private static readonly string DeployDir = Path.Combine(Repo, "deploy");

    // ---- container image -------------------------------------------------------------

    [Fact]
    public void Dockerfile_is_multi_stage_non_root_with_health_check_and_ports()
    {
        var instructions = DockerInstructions(Path.Combine(DeployDir, "container", "Dockerfile"));
        var from = instructions.Where(i => i.Op == "FROM").Select(i => i.Args).ToList();

        Assert.True(from.Count >= 2, "multi-stage: at least a build and a runtime stage");
        Assert.Contains("mcr.microsoft.com/dotnet/sdk:", from[0], StringComparison.Ordinal);
        Assert.Contains("mcr.microsoft.com/dotnet/aspnet:", from[^1], StringComparison.Ordinal);
        Assert.DoesNotContain("sdk", from[^1], StringComparison.Ordinal);

        var runtime = instructions.SkipWhile(i => i.Args != from[^1]).ToList();
        var user = Assert.Single(runtime, i => i.Op == "USER").Args.Split(':')[0];
        Assert.NotEqual("root", user);
        Assert.True(int.TryParse(user, out var uid) && uid > 0, "USER is a numeric non-root UID, so Kubernetes can verify runAsNonRoot");

        var health = Assert.Single(runtime, i => i.Op == "HEALTHCHECK").Args;
        Assert.Contains("CMD", health, StringComparison.Ordinal);
        Assert.Contains("/healthz", health, StringComparison.Ordinal);

        var exposed = runtime.Where(i => i.Op == "EXPOSE").SelectMany(i => i.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToHashSet();
        Assert.Superset(new HashSet<string> { "5443", "8443", "8080" }, exposed);

        // The health check's plain-HTTP port is an HTTP/1 Kestrel endpoint set in the image.
        var env = string.Join(' ', runtime.Where(i => i.Op == "ENV").Select(i => i.Args));
        Assert.Contains("Kestrel__Endpoints__Health__Url=http://0.0.0.0:8080", env, StringComparison.Ordinal);
        Assert.Contains("Kestrel__Endpoints__Health__Protocols=Http1", env, StringComparison.Ordinal);
        Assert.Contains("Broker__AuditPath=/var/lib/broker/audit", env, StringComparison.Ordinal);
        Assert.Contains(runtime, i => i.Op == "VOLUME" && i.Args.Contains("/var/lib/broker/audit", StringComparison.Ordinal));

        var entry = Assert.Single(runtime, i => i.Op == "ENTRYPOINT").Args;
        Assert.Contains("Broker.Server.dll", entry, StringComparison.Ordinal);

        // Every file the build stage copies from the context (the repository root) exists.
        foreach (var copy in instructions.Where(i => i.Op == "COPY" && !i.Args.Contains("--from", StringComparison.Ordinal)))
        {
            var parts = copy.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(p => !p.StartsWith("--", StringComparison.Ordinal)).ToList();
            foreach (var source in parts.Take(parts.Count - 1))
            {
                Assert.True(File.Exists(Path.Combine(Repo, source)) || Directory.Exists(Path.Combine(Repo, source)), $"COPY source '{source}' is missing from the repository");
            }
        }

        // Projects the server and brokerctl reference are all restored from copied project files.
        var copied = string.Join(' ', instructions.Where(i => i.Op == "COPY").Select(i => i.Args));
        foreach (var project in new[] { "Broker.Server", "Broker.Cli" }.SelectMany(ProjectClosure).Distinct())
        {
            Assert.Contains($"broker/{project}/{project}.csproj", copied, StringComparison.Ordinal);
        }

        // The sample resource server's stage: its own build with the SDK's project closure, a
        // non-root runtime with a health check. The broker stays the last (default) stage.
        var sample = Stage(instructions, "resource-server");
        var sampleUser = Assert.Single(sample, i => i.Op == "USER").Args.Split(':')[0];
        Assert.True(int.TryParse(sampleUser, out var sampleUid) && sampleUid > 0, "the resource server runs as a numeric non-root UID");
        Assert.Contains("/healthz", Assert.Single(sample, i => i.Op == "HEALTHCHECK").Args, StringComparison.Ordinal);
        Assert.Contains("Broker.SampleResourceServer.dll", Assert.Single(sample, i => i.Op == "ENTRYPOINT").Args, StringComparison.Ordinal);
        var sampleEnv = string.Join(' ', sample.Where(i => i.Op == "ENV").Select(i => i.Args));
        Assert.Contains("Sample__HealthOnlyPort=8080", sampleEnv, StringComparison.Ordinal);
        Assert.Contains("Kestrel__Endpoints__Health__Url=http://0.0.0.0:8080", sampleEnv, StringComparison.Ordinal);
        var sampleBuild = string.Join(' ', Stage(instructions, "resource-server-build").Where(i => i.Op == "COPY").Select(i => i.Args));
        Assert.Contains("samples/Broker.SampleResourceServer/Broker.SampleResourceServer.csproj", sampleBuild, StringComparison.Ordinal);
        foreach (var project in ProjectClosure("Broker.ResourceServer").Distinct())
        {
            Assert.Contains($"broker/{project}/{project}.csproj", sampleBuild, StringComparison.Ordinal);
        }
    }

    // ---- Kubernetes -------------------------------------------------------------------

    [Fact]
    public void Kubernetes_manifests_parse_and_hold_the_required_objects()
    {
        var kubeDir = Path.Combine(DeployDir, "kubernetes");
        var kustomization = LoadDocuments(Path.Combine(kubeDir, "kustomization.yaml")).Single();
        var listed = Seq(kustomization, "resources").Select(Str).ToList();
        var onDisk = Directory.GetFiles(kubeDir, "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml").ToList();
        Assert.Equal(onDisk.Order(), listed.Order());

        var objects = listed.SelectMany(f => LoadDocuments(Path.Combine(kubeDir, f!))).ToList();
        var kinds = objects.Select(o => Str(o["kind"])).ToList();
        foreach (var kind in new[] { "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "PersistentVolumeClaim" })
        {
            Assert.Contains(kind, kinds);
        }

        Assert.DoesNotContain("Secret", kinds); // keys are referenced, never inline

        var deployment = objects.Single(o => Str(o["kind"]) == "Deployment");
        var spec = Map(deployment, "spec");
        Assert.Equal("3", Str(spec["replicas"]));
        var labels = Map(Map(Map(spec, "template"), "metadata"), "labels");
        var pod = Map(Map(spec, "template"), "spec");
        Assert.Equal("true", Str(Map(pod, "securityContext")["runAsNonRoot"]));

        var container = (YamlMappingNode)Seq(pod, "containers").Single();
        var security = Map(container, "securityContext");
        Assert.Equal("true", Str(security["readOnlyRootFilesystem"]));
        Assert.Equal("true", Str(security["runAsNonRoot"]));
        Assert.Equal("false", Str(security["allowPrivilegeEscalation"]));
        Assert.True(Map(container, "resources").Children.ContainsKey("requests"));
        Assert.True(Map(container, "resources").Children.ContainsKey("limits"));

        var env = Seq(container, "env").Cast<YamlMappingNode>().ToDictionary(e => Str(e["name"]), e => e);
        string EnvValue(string name) => Str(env[name]["value"]);

        // Readiness and liveness use the gRPC health service, on a plaintext HTTP/2 endpoint
        // (kubelet gRPC probes cannot speak TLS) that the container declares.
        var healthUrl = new Uri(EnvValue("Kestrel__Endpoints__Health__Url"));
        Assert.Equal("http", healthUrl.Scheme);
        Assert.Equal("Http2", EnvValue("Kestrel__Endpoints__Health__Protocols"));
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            var grpc = Map(Map(container, probe), "grpc");
            Assert.Equal(healthUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), Str(grpc["port"]));
        }

        // Readiness asks every check; liveness only whether the process serves, so a Redis
        // outage never restarts the fleet. Both names are ones the broker answers.
        Assert.False(Map(Map(container, "readinessProbe"), "grpc").Children.ContainsKey("service"));
        Assert.Equal(Broker.Server.Hosting.HealthServices.Liveness, Str(Map(Map(container, "livenessProbe"), "grpc")["service"]));
        Assert.Equal(Broker.Server.Hosting.HealthServices.Liveness, Str(Map(Map(container, "startupProbe"), "grpc")["service"]));

        // Prometheus scrapes a dedicated listener the broker confines /metrics to.
        var metricsUrl = new Uri(EnvValue("Kestrel__Endpoints__Metrics__Url"));
        Assert.Equal(metricsUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), EnvValue("Broker__Observability__MetricsPort"));
        var annotations = Map(Map(Map(spec, "template"), "metadata"), "annotations");
        Assert.Equal(EnvValue("Broker__Observability__MetricsPort"), Str(annotations["prometheus.io/port"]));
        Assert.Equal("/metrics", Str(annotations["prometheus.io/path"]));

        // Every security setting start-up insists on (BRK1001-1009) is present.
        foreach (var required in new[] { "Broker__Issuer", "Broker__PolicyPath", "Broker__AuditPath", "Broker__Audit__CheckpointKeyPath", "Broker__Signing__Keys__0__Path", "Broker__Operators__Authority", "Broker__Redis__Configuration", "Broker__NodeId" })
        {
            Assert.True(env.ContainsKey(required), $"Deployment env lacks {required}");
        }

        Assert.StartsWith("https://", EnvValue("Broker__Issuer"), StringComparison.Ordinal);
        Assert.Equal("broker-redis", Str(Map(Map(env["Broker__Redis__Configuration"], "valueFrom"), "secretKeyRef")["name"]));

        // Keys come from Secret volumes mounted where the env points.
        var volumes = Seq(pod, "volumes").Cast<YamlMappingNode>().ToDictionary(v => Str(v["name"]), v => v);
        var mounts = Seq(container, "volumeMounts").Cast<YamlMappingNode>().ToList();
        string MountOf(string volume) => Str(mounts.First(m => Str(m["name"]) == volume)["mountPath"]);
        foreach (var (volume, envName) in new[] { ("signing-keys", "Broker__Signing__Keys__0__Path"), ("audit-checkpoint-key", "Broker__Audit__CheckpointKeyPath"), ("tls", "Kestrel__Endpoints__Grpc__Certificate__KeyPath") })
        {
            Assert.True(Map(volumes[volume], "secret").Children.ContainsKey("secretName"), $"{volume} is a Secret reference");
            Assert.StartsWith(MountOf(volume) + "/", EnvValue(envName), StringComparison.Ordinal);
        }

        Assert.Equal("broker-policy", Str(Map(volumes["policy"], "configMap")["name"]));
        Assert.Equal(MountOf("policy") + "/policy.yaml", EnvValue("Broker__PolicyPath"));
        Assert.Equal("broker-audit", Str(Map(volumes["state"], "persistentVolumeClaim")["claimName"]));

        // The policy in the ConfigMap validates, with the bundle files laid out as mounted.
        var configMap = objects.Single(o => Str(o["kind"]) == "ConfigMap" && Str(Map(o, "metadata")["name"]) == "broker-policy");
        var data = Map(configMap, "data");
        var policyDir = Directory.CreateTempSubdirectory("broker-k8s-policy-").FullName;
        try
        {
            foreach (var item in Seq(Map(volumes["policy"], "configMap"), "items").Cast<YamlMappingNode>())
            {
                var target = Path.Combine(policyDir, Str(item["path"]));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.WriteAllText(target, Str(data[Str(item["key"])]));
            }

            AssertPolicyValid(Path.Combine(policyDir, "policy.yaml"));
        }
        finally
        {
            Directory.Delete(policyDir, recursive: true);
        }

        var containerPorts = Seq(container, "ports").Cast<YamlMappingNode>().ToDictionary(p => Str(p["name"]), p => Str(p["containerPort"]));

        // Service, PDB and NetworkPolicy select the Deployment's pods.
        foreach (var kind in new[] { "Service", "PodDisruptionBudget", "NetworkPolicy" })
        {
            var o = objects.Single(x => Str(x["kind"]) == kind);
            var selector = kind switch
            {
                "Service" => Map(Map(o, "spec"), "selector"),
                "PodDisruptionBudget" => Map(Map(Map(o, "spec"), "selector"), "matchLabels"),
                _ => Map(Map(Map(o, "spec"), "podSelector"), "matchLabels"),
            };
            foreach (var (key, value) in selector.Children)
            {
                Assert.Equal(Str(value), Str(labels[key]));
            }
        }

        var pdb = Map(objects.Single(o => Str(o["kind"]) == "PodDisruptionBudget"), "spec");
        Assert.True(int.Parse(Str(pdb["minAvailable"]), System.Globalization.CultureInfo.InvariantCulture) is >= 1 and < 3);

        // Ingress to the gRPC and HTTPS ports, and to metrics from monitoring only; egress to
        // DNS, Redis (+ Sentinel) and HTTPS (IdP).
        var netpol = Map(objects.Single(o => Str(o["kind"]) == "NetworkPolicy"), "spec");
        Assert.Equal(["Egress", "Ingress"], Seq(netpol, "policyTypes").Select(Str).Order());
        var ingressRules = Seq(netpol, "ingress").Cast<YamlMappingNode>().ToList();
        var ingressPorts = ingressRules.SelectMany(r => Seq(r, "ports").Cast<YamlMappingNode>()).Select(p => Str(p["port"])).ToHashSet();
        Assert.Equal(new HashSet<string> { containerPorts["grpc"], containerPorts["https"], containerPorts["metrics"] }, ingressPorts);
        var metricsRule = ingressRules.Single(r => Seq(r, "ports").Cast<YamlMappingNode>().Any(p => Str(p["port"]) == containerPorts["metrics"]));
        Assert.Equal([containerPorts["metrics"]], Seq(metricsRule, "ports").Cast<YamlMappingNode>().Select(p => Str(p["port"])));
        Assert.Contains("monitoring", Seq(metricsRule, "from").AllNodes.OfType<YamlScalarNode>().Select(n => n.Value));
        Assert.DoesNotContain(containerPorts["health"], ingressPorts);
        var egressPorts = Seq(netpol, "egress").Cast<YamlMappingNode>().SelectMany(r => Seq(r, "ports").Cast<YamlMappingNode>()).Select(p => Str(p["port"])).ToHashSet();
        Assert.Superset(new HashSet<string> { "53", "6379", "26379", "443" }, egressPorts);

        var service = Map(objects.Single(o => Str(o["kind"]) == "Service"), "spec");
        Assert.Equal(new HashSet<string> { "grpc", "https" }, Seq(service, "ports").Cast<YamlMappingNode>().Select(p => Str(p["targetPort"])).ToHashSet());
    }

    // ---- compose ----------------------------------------------------------------------

    [Fact]
    public void Compose_has_three_brokers_redis_replica_three_sentinels_and_health_checks()
    {
        var composeDir = Path.Combine(DeployDir, "compose");
        var compose = LoadMerged(Path.Combine(composeDir, "compose.yaml"));
        var services = (Dictionary<object, object>)compose["services"];
        Dictionary<object, object> Service(string name) => (Dictionary<object, object>)services[name];

        var brokers = services.Keys.Cast<string>().Where(n => Regex.IsMatch(n, "^broker-[0-9]+$")).Order().ToList();
        Assert.Equal(["broker-1", "broker-2", "broker-3"], brokers);

        var sentinels = services.Where(s => s.Value is Dictionary<object, object> d && d.TryGetValue("command", out var c) && Flatten(c).Contains("redis-sentinel", StringComparison.Ordinal)).Select(s => (string)s.Key).ToList();
        Assert.Equal(3, sentinels.Count);

        var primary = Flatten(Service("redis-primary")["command"]);
        foreach (var setting in new[] { "--appendonly yes", "--appendfsync always", "--maxmemory-policy noeviction", "--min-replicas-to-write 1" })
        {
            Assert.Contains(setting, primary, StringComparison.Ordinal);
        }

        Assert.Contains("--replicaof redis-primary 6379", Flatten(Service("redis-replica")["command"]), StringComparison.Ordinal);

        var sentinelConf = File.ReadAllText(Path.Combine(composeDir, "redis", "sentinel.conf"));
        var monitor = SentinelMonitor().Match(sentinelConf);
        Assert.True(monitor.Success, "sentinel.conf monitors the primary");
        var serviceName = monitor.Groups["name"].Value;
        Assert.Equal("redis-primary", monitor.Groups["host"].Value);
        Assert.Equal(2, int.Parse(monitor.Groups["quorum"].Value, System.Globalization.CultureInfo.InvariantCulture));

        foreach (var name in brokers.Concat(sentinels).Append("redis-primary").Append("redis-replica"))
        {
            var healthcheck = Assert.IsType<Dictionary<object, object>>(Service(name)["healthcheck"]);
            Assert.NotEmpty(Flatten(healthcheck["test"]));
        }

        var nodeIds = new HashSet<string>();
        var auditVolumes = new HashSet<string>();
        foreach (var name in brokers)
        {
            var broker = Service(name);
            var env = ((Dictionary<object, object>)broker["environment"]).ToDictionary(e => (string)e.Key, e => e.Value?.ToString() ?? "");
            Assert.True(nodeIds.Add(env["Broker__NodeId"]), "each node has its own audit node id");
            Assert.StartsWith("https://", env["Broker__Issuer"], StringComparison.Ordinal);
            Assert.Equal("1", env["Broker__RevocationMinReplicas"]);
            Assert.Equal("true", broker["read_only"].ToString());

            // Sentinel mode: the service name and every sentinel's address.
            var redis = ConfigurationOptions.Parse(env["Broker__Redis__Configuration"]);
            Assert.Equal(serviceName, redis.ServiceName);
            Assert.Equal(sentinels.Select(s => $"{s}:26379").Order(), redis.EndPoints.Select(e => e is DnsEndPoint d ? $"{d.Host}:{d.Port}" : e.ToString()!).Order());
            Assert.False(redis.AbortOnConnectFail);

            var volumes = ((List<object>)broker["volumes"]).Cast<string>().ToList();
            var audit = Assert.Single(volumes, v => v.EndsWith(":/var/lib/broker/audit", StringComparison.Ordinal));
            Assert.True(auditVolumes.Add(audit.Split(':')[0]), "each node has its own audit volume");
            Assert.Contains(volumes, v => v.StartsWith("./policy:/etc/broker/policy", StringComparison.Ordinal));

            var secrets = ((List<object>)broker["secrets"]).Cast<string>().ToHashSet();
            Assert.Superset(new HashSet<string> { "broker-signing-key", "broker-audit-checkpoint-key" }, secrets);
        }

        // The sample resource server: the Dockerfile's resource-server stage, health-checked,
        // trusting the brokers' issuer and following revocations from the brokers' alias.
        var resourceServer = Service("resource-server");
        var build = (Dictionary<object, object>)resourceServer["build"];
        Assert.Equal("deploy/container/Dockerfile", build["dockerfile"]);
        Assert.Equal("../..", build["context"]);
        Assert.NotEmpty(Stage(DockerInstructions(Path.Combine(DeployDir, "container", "Dockerfile")), (string)build["target"]));
        Assert.NotEmpty(Flatten(((Dictionary<object, object>)resourceServer["healthcheck"])["test"]));
        Assert.Equal("true", resourceServer["read_only"].ToString());
        Assert.Superset(brokers.Cast<object>().ToHashSet(), ((Dictionary<object, object>)resourceServer["depends_on"]).Keys.ToHashSet());

        var rsEnv = ((Dictionary<object, object>)resourceServer["environment"]).ToDictionary(e => (string)e.Key, e => e.Value?.ToString() ?? "");
        var brokerEnv = ((Dictionary<object, object>)Service("broker-1")["environment"]).ToDictionary(e => (string)e.Key, e => e.Value?.ToString() ?? "");
        Assert.Equal(brokerEnv["Broker__Issuer"], rsEnv["Sample__Issuer"]);
        var revocationAddress = new Uri(rsEnv["Sample__RevocationAddress"]);
        Assert.Equal("https", revocationAddress.Scheme);
        Assert.Equal(new Uri(brokerEnv["Kestrel__Endpoints__Grpc__Url"]).Port, revocationAddress.Port);
        foreach (var name in brokers)
        {
            var networks = (Dictionary<object, object>)Service(name)["networks"];
            var aliases = (List<object>)((Dictionary<object, object>)networks["default"])["aliases"];
            Assert.Contains(revocationAddress.Host, aliases.Cast<string>());
            Assert.Contains(new Uri(rsEnv["Sample__Issuer"]).Host, aliases.Cast<string>());
        }

        var rsAudience = rsEnv["Sample__Audience"];
        Assert.Contains($"audiences: [{rsAudience}]", File.ReadAllText(Path.Combine(composeDir, "policy", "policy.yaml")), StringComparison.Ordinal);
        var declaredSecrets = ((Dictionary<object, object>)compose["secrets"]).Keys.Cast<string>().ToHashSet();
        Assert.Subset(declaredSecrets, ((List<object>)resourceServer["secrets"]).Cast<string>().ToHashSet());
        Assert.StartsWith("/run/secrets/", rsEnv["Sample__CaCertificatePath"], StringComparison.Ordinal);

        // The compose policy validates once make-secrets.sh has written its trust bundle.
        var policyDir = Directory.CreateTempSubdirectory("broker-compose-policy-").FullName;
        try
        {
            File.Copy(Path.Combine(composeDir, "policy", "policy.yaml"), Path.Combine(policyDir, "policy.yaml"));
            Directory.CreateDirectory(Path.Combine(policyDir, "bundles"));
            File.WriteAllText(Path.Combine(policyDir, "bundles", "compose.local.test.jwks"), """{"keys":[]}""");
            AssertPolicyValid(Path.Combine(policyDir, "policy.yaml"));
        }
        finally
        {
            Directory.Delete(policyDir, recursive: true);
        }

        // The local script starts the same number of broker nodes by default.
        var script = File.ReadAllText(Path.Combine(DeployDir, "local", "cluster.sh"));
        Assert.Contains($"local nodes=${{1:-{brokers.Count}}}", script, StringComparison.Ordinal);
    }

    [Fact]
    public void Systemd_unit_is_hardened_and_writes_only_the_state_folder()
    {
        var unit = File.ReadAllLines(Path.Combine(DeployDir, "systemd", "broker.service"))
            .Where(l => l.Contains('=', StringComparison.Ordinal) && !l.TrimStart().StartsWith('#'))
            .Select(l => l.Split('=', 2))
            .GroupBy(p => p[0].Trim(), p => p[1].Trim())
            .ToDictionary(g => g.Key, g => g.ToList());

        Assert.Equal("yes", unit["NoNewPrivileges"].Single());
        Assert.Equal("strict", unit["ProtectSystem"].Single());
        Assert.Equal("yes", unit["DynamicUser"].Single());
        Assert.Equal("/var/lib/broker", unit["ReadWritePaths"].Single());
        Assert.Equal("2", unit["RestartPreventExitStatus"].Single());
        Assert.Contains(unit["Environment"], e => e.StartsWith("Broker__AuditPath=/var/lib/broker/", StringComparison.Ordinal));
        Assert.Contains("/usr/bin/dotnet", unit["ExecStart"].Single(), StringComparison.Ordinal);
        Assert.Equal(3, unit["LoadCredential"].Count);
    }

    // ---- Redis Sentinel ----------------------------------------------------------------

    /// <summary>
    /// The configuration string the manifests use (sentinel endpoints + serviceName), parsed and
    /// connected exactly as the broker does, reaches the primary through a real Sentinel; WAIT
    /// sees the replica; the durability check reads the primary's settings.
    /// </summary>
    [Fact]
    public async Task Sentinel_configuration_string_connects_to_the_primary()
    {
        await using var primary = await RedisServer.StartAsync();
        var replicaPort = RedisServer.FreePort();
        var sentinelPort = RedisServer.FreePort();
        var work = Directory.CreateTempSubdirectory("broker-sentinel-").FullName;
        var started = new List<Process>();
        try
        {
            started.Add(StartRedis(primary.Executable, work, "replica",
                "--port", $"{replicaPort}", "--bind", "127.0.0.1", "--dir", Path.Combine(work, "replica"), "--replicaof", "127.0.0.1", $"{primary.Port}",
                "--appendonly", "yes", "--appendfsync", "always", "--save", ""));
            var sentinelConf = Path.Combine(work, "sentinel.conf");
            await File.WriteAllTextAsync(sentinelConf, $"port {sentinelPort}\nbind 127.0.0.1\nsentinel monitor broker 127.0.0.1 {primary.Port} 1\nsentinel down-after-milliseconds broker 5000\n");
            started.Add(StartRedis(primary.Executable, work, "sentinel", sentinelConf, "--sentinel"));

            await WaitUntilAsync(async () =>
            {
                await using var direct = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{primary.Port},allowAdmin=true");
                var info = await direct.GetServer($"127.0.0.1:{primary.Port}").InfoAsync("replication");
                return info.SelectMany(g => g).Any(kv => kv.Key == "slave0" && kv.Value.Contains("state=online", StringComparison.Ordinal));
            }, "the replica to be in sync");

            // As BrokerServerExtensions does: Parse, AbortOnConnectFail = false, Connect.
            var config = ConfigurationOptions.Parse($"127.0.0.1:{sentinelPort},serviceName=broker,allowAdmin=true,abortConnect=false");
            config.AbortOnConnectFail = false;
            using var redis = ConnectionMultiplexer.Connect(config);

            var key = $"t{Guid.NewGuid():N}";
            Assert.True(await redis.GetDatabase().StringSetAsync(key, "v"));
            await using (var direct = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{primary.Port}"))
            {
                Assert.Equal("v", (string?)await direct.GetDatabase().StringGetAsync(key));
            }

            // RedisDurableWrites issues WAIT this way (RevocationMinReplicas > 0).
            var acknowledged = (long)await redis.GetDatabase().ExecuteAsync("WAIT", 1, 2000);
            Assert.Equal(1, acknowledged);

            // AOF + always on the primary; min-replicas-to-write is 0 here, which BRK2003 flags.
            var problems = await RedisDurabilityCheck.ProblemsAsync(redis, minReplicas: 1);
            Assert.Equal(["BRK2003"], problems.Select(p => p[..7]));
        }
        finally
        {
            foreach (var process in started)
            {
                StopProcess(process);
            }

            Directory.Delete(work, recursive: true);
        }
    }

    // ---- the local cluster script ---------------------------------------------------------

    /// <summary>
    /// cluster.sh brings up Redis, two production-mode nodes sharing issuer, key and Redis, and
    /// the sample resource server; every one answers /healthz 200 (the epoch was set, state and
    /// audit are healthy, the resource server holds a revocation snapshot) and the nodes publish
    /// the same JWKS. A token issued at node-1 is accepted by the resource server; revoked at
    /// node-2 by the operator commands start prints (a token from the generated operator key,
    /// no IdP), it is refused there within a bounded wait, and the printed approve command
    /// approves a gated request. stop ends exactly the PIDs it wrote.
    /// </summary>
    [Fact]
    public async Task Local_cluster_script_starts_nodes_and_resource_server_which_refuses_a_token_revoked_at_another_node()
    {
        var dir = Path.Combine(Directory.CreateTempSubdirectory("broker-cluster-test-").FullName, "cluster");
        var env = new Dictionary<string, string>
        {
            ["BROKER_CLUSTER_DIR"] = dir,
            ["BROKER_DLL"] = ServerDll(),
            ["BROKER_SAMPLE_DLL"] = SampleResourceServerDll(),
            ["BROKERCTL"] = BrokerCtlExecutable(),
            ["BROKER_START_TIMEOUT"] = "90",
        };
        List<(int Pid, string Name)> pids = [];
        try
        {
            var (code, output) = await RunScriptAsync(env, TimeSpan.FromSeconds(120), "start", "2");
            Assert.True(code == 0, $"cluster.sh start exited {code}:\n{output}\n{Logs(dir)}");

            pids = File.ReadAllLines(Path.Combine(dir, "pids")).Select(l => l.Split(' ')).Select(p => (int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p[1])).ToList();
            Assert.Equal(["Broker.SampleResourceServer", "Broker.Server", "Broker.Server", "redis-server"], pids.Select(p => p.Name).Order());
            Assert.All(pids, p => Assert.True(IsAlive(p.Pid), $"{p.Name} {p.Pid} runs"));

            var healthUrls = HealthUrl().Matches(output).Select(m => m.Value).ToList();
            Assert.Equal(2, healthUrls.Count);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var jwks = new List<string>();
            foreach (var url in healthUrls)
            {
                using var response = await http.GetAsync(new Uri(url));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                jwks.Add(await http.GetStringAsync(new Uri(url.Replace("/healthz", "/.well-known/jwks.json", StringComparison.Ordinal))));
            }

            Assert.Equal(jwks[0], jwks[1]); // one signing key for the cluster

            await AssertResourceServerFollowsRevocationAsync(dir, output, env, http);

            var (statusCode, statusOutput) = await RunScriptAsync(env, TimeSpan.FromSeconds(30), "status");
            Assert.True(statusCode == 0, statusOutput);
            Assert.Equal(4, statusOutput.Split('\n').Count(l => l.StartsWith("running", StringComparison.Ordinal)));
            Assert.Contains("Broker.SampleResourceServer resource-server", statusOutput, StringComparison.Ordinal);
            Assert.DoesNotContain("/healthz 503", statusOutput, StringComparison.Ordinal);

            var (stopCode, stopOutput) = await RunScriptAsync(env, TimeSpan.FromSeconds(60), "stop");
            Assert.True(stopCode == 0, stopOutput);
            Assert.Contains("4 process(es) ended", stopOutput, StringComparison.Ordinal);
            await WaitUntilAsync(() => Task.FromResult(pids.All(p => !IsAlive(p.Pid))), "every cluster process to exit");
            Assert.False(File.Exists(Path.Combine(dir, "pids")));

            // A clean stop sealed each node's open audit segment.
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, "node-1", "audit"), "*.checkpoint"));
        }
        finally
        {
            // Only if the test failed half way: end exactly the processes the script recorded.
            foreach (var (pid, name) in pids.Where(p => IsAlive(p.Pid)))
            {
                if (IsOurs(pid, name))
                {
                    try
                    {
                        Process.GetProcessById(pid).Kill();
                    }
                    catch (ArgumentException)
                    {
                    }
                }
            }

            Directory.Delete(Path.GetDirectoryName(dir)!, recursive: true);
        }
    }

    /// <summary>
    /// An agent of the cluster's trust domain gets a repo:read token for task t-1 at node-1; the
    /// resource server answers 200 with that token's id; the commands cluster.sh printed run as
    /// printed (a responder and approver token from operator-token, revoke task t-1 at node-2, a
    /// gated deploy:prod request approved at node-2); the resource server (on node-1's revocation
    /// stream) answers 401 "token revoked" within 10 s.
    /// </summary>
    private static async Task AssertResourceServerFollowsRevocationAsync(string dir, string output, Dictionary<string, string> env, HttpClient http)
    {
        var grpc = NodeGrpc().Matches(output).ToDictionary(m => m.Groups["node"].Value, m => m.Groups["url"].Value);
        var resource = ResourceServerUrl().Match(output);
        Assert.True(resource.Success, $"cluster.sh start names the resource server:\n{output}");
        var resourceUrl = resource.Groups["url"].Value;

        // The SVID the way SPIRE would sign it, with the trust-domain key the script generated.
        using var trustKey = System.Security.Cryptography.ECDsa.Create();
        trustKey.ImportFromPem(File.ReadAllText(Path.Combine(dir, "trust", "trust.key.pem")));
        var now = DateTimeOffset.UtcNow;
        var svid = SignEs256(trustKey, $$"""{"alg":"ES256","kid":"cluster-trust-1","typ":"JWT"}""",
            $$"""{"sub":"spiffe://cluster.local.test/agents/demo","aud":"spiffe://cluster.local.test/broker","iat":{{now.ToUnixTimeSeconds()}},"exp":{{now.AddMinutes(5).ToUnixTimeSeconds()}}}""");

        using var node1 = Grpc.Net.Client.GrpcChannel.ForAddress(grpc["node-1"]);
        using var node2 = Grpc.Net.Client.GrpcChannel.ForAddress(grpc["node-2"]);
        var issued = await new Broker.V1.CredentialService.CredentialServiceClient(node1).IssueCredentialAsync(new Broker.V1.IssueCredentialRequest
        {
            TaskId = "t-1",
            Phase = Broker.V1.Phase.Planning,
            Scopes = { "repo:read" },
            Audience = "https://api.local.test",
            Attestation = new Broker.V1.AttestationProof { JwtSvid = svid },
        });

        async Task<HttpResponseMessage> GetRepoAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(resourceUrl + "/repo"));
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", issued.AccessToken);
            return await http.SendAsync(request);
        }

        using (var accepted = await GetRepoAsync())
        {
            var body = await accepted.Content.ReadAsStringAsync();
            Assert.True(accepted.StatusCode == HttpStatusCode.OK, $"{(int)accepted.StatusCode} {body}");
            using var json = System.Text.Json.JsonDocument.Parse(body);
            Assert.Equal(issued.TokenId, json.RootElement.GetProperty("token_id").GetString());
            Assert.Equal("spiffe://cluster.local.test/agents/demo", json.RootElement.GetProperty("sub").GetString());
            Assert.Equal("planning", json.RootElement.GetProperty("phase").GetString());
        }

        // Authenticated but not allowed: a planning token may not deploy (403, not 401).
        using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri(resourceUrl + "/deployments/staging")))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", issued.AccessToken);
            using var forbidden = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        // Every command line start printed after "Try:", run as a person would paste them.
        var printed = output.Split('\n')
            .SkipWhile(l => !l.StartsWith("Try:", StringComparison.Ordinal))
            .TakeWhile(l => !l.StartsWith("Stop:", StringComparison.Ordinal))
            .Where(l => l.StartsWith("Try:", StringComparison.Ordinal) || l.StartsWith("      ", StringComparison.Ordinal))
            .Select(l => l.StartsWith("Try:", StringComparison.Ordinal) ? l["Try:".Length..].Trim() : l.Trim())
            .ToList();
        Assert.Contains(printed, l => l.Contains(" operator-token ", StringComparison.Ordinal));
        Assert.Contains(printed, l => l.Contains(" revoke task t-1 ", StringComparison.Ordinal));
        Assert.Contains(printed, l => l.Contains(" approvals approve ", StringComparison.Ordinal));
        var (code, commands) = await RunShellAsync(env, TimeSpan.FromSeconds(90), "set -eu\n" + string.Join('\n', printed) + "\n");
        Assert.True(code == 0, $"the printed commands exited {code}:\n{string.Join('\n', printed)}\n{commands}");
        Assert.Matches(new Regex(@"^state +approved$", RegexOptions.Multiline), commands);
        var revokedAt = Stopwatch.StartNew();

        while (true)
        {
            using var response = await GetRepoAsync();
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                Assert.Contains("token revoked", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
                break;
            }

            Assert.True(response.StatusCode == HttpStatusCode.OK, $"before the revocation arrives the token is still accepted, got {(int)response.StatusCode}");
            Assert.True(revokedAt.Elapsed < TimeSpan.FromSeconds(10), "the resource server still accepted the token 10 s after the revocation returned OK");
            await Task.Delay(20);
        }
    }

    private static string SignEs256(System.Security.Cryptography.ECDsa key, string headerJson, string payloadJson)
    {
        var input = System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(headerJson)) + "."
            + System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(payloadJson));
        var signature = key.SignData(System.Text.Encoding.ASCII.GetBytes(input), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return input + "." + System.Buffers.Text.Base64Url.EncodeToString(signature);
    }

    // ---- helpers ----------------------------------------------------------------------

    private sealed record DockerInstruction(string Op, string Args);

    private static List<DockerInstruction> DockerInstructions(string path)
    {
        var result = new List<DockerInstruction>();
        var current = "";
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            current += (current.Length > 0 ? " " : "") + line.TrimEnd('\\').Trim();
            if (line.EndsWith('\\'))
            {
                continue;
            }

            var space = current.IndexOf(' ', StringComparison.Ordinal);
            var op = (space < 0 ? current : current[..space]).ToUpperInvariant();
            Assert.Contains(op, new[] { "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL" });
            result.Add(new DockerInstruction(op, space < 0 ? "" : current[(space + 1)..].Trim()));
            current = "";
        }

        Assert.Equal("", current); // no dangling continuation
        return result;
    }

    /// <summary>The instructions of the stage named <paramref name="name"/> (FROM ... AS name), up to the next FROM.</summary>
    private static List<DockerInstruction> Stage(List<DockerInstruction> instructions, string name) =>
        instructions
            .SkipWhile(i => !(i.Op == "FROM" && i.Args.EndsWith(" AS " + name, StringComparison.OrdinalIgnoreCase)))
            .Select((i, index) => (i, index))
            .TakeWhile(x => x.index == 0 || x.i.Op != "FROM")
            .Select(x => x.i)
            .ToList();

    private static IEnumerable<string> ProjectClosure(string project)
    {
        yield return project;
        var csproj = File.ReadAllText(Path.Combine(Repo, "broker", project, project + ".csproj"));
        foreach (Match reference in ProjectReference().Matches(csproj))
        {
            foreach (var p in ProjectClosure(reference.Groups["name"].Value))
            {
                yield return p;
            }
        }
    }

    private static List<YamlMappingNode> LoadDocuments(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static Dictionary<object, object> LoadMerged(string path)
    {
        using var reader = new StreamReader(path);
        var deserializer = new DeserializerBuilder().Build();
        return deserializer.Deserialize<Dictionary<object, object>>(new MergingParser(new Parser(reader)));
    }

    private static YamlMappingNode Map(YamlNode node, string key) => (YamlMappingNode)((YamlMappingNode)node)[key];

    private static YamlSequenceNode Seq(YamlNode node, string key) => (YamlSequenceNode)((YamlMappingNode)node)[key];

    private static string Str(YamlNode node) => ((YamlScalarNode)node).Value ?? "";

    private static string Flatten(object value) => value switch
    {
        List<object> list => string.Join(' ', list.Select(Flatten)),
        _ => value?.ToString() ?? "",
    };

    private static void AssertPolicyValid(string path)
    {
        var result = PolicyLoader.LoadFile(path);
        Assert.True(result.Succeeded, string.Join(Environment.NewLine, result.Errors.Select(e => e.ToString())));
    }

    private static string ServerDll()
    {
        // bin/<Configuration>/net10.0 of this test project: build the server of the same configuration.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(Repo, "broker", "Broker.Server", "bin", configuration, "net10.0", "Broker.Server.dll");
        return File.Exists(dll) ? dll : Path.Combine(AppContext.BaseDirectory, "Broker.Server.dll");
    }

    private static string SampleResourceServerDll()
    {
        // Built with the test project (a build-only project reference), in the same configuration.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        return Path.Combine(Repo, "samples", "Broker.SampleResourceServer", "bin", configuration, "net10.0", "Broker.SampleResourceServer.dll");
    }

    private static string BrokerCtlExecutable()
    {
        // brokerctl of the same configuration (its apphost), as the cluster script would build it.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var built = Path.Combine(Repo, "broker", "Broker.Cli", "bin", configuration, "net10.0", "brokerctl");
        return File.Exists(built) ? built : Path.Combine(AppContext.BaseDirectory, "brokerctl");
    }

    /// <summary>Runs <paramref name="script"/> with bash -c; stdout and stderr together.</summary>
    private static Task<(int Code, string Output)> RunShellAsync(Dictionary<string, string> env, TimeSpan timeout, string script) =>
        RunProcessAsync("bash", ["-c", script], env, timeout, Repo);

    private static Task<(int Code, string Output)> RunScriptAsync(Dictionary<string, string> env, TimeSpan timeout, params string[] args) =>
        RunProcessAsync("bash", [Path.Combine(DeployDir, "local", "cluster.sh"), .. args], env, timeout, Repo);

    /// <summary>Runs a program to its end (killed at <paramref name="timeout"/>, then code -1); stdout and stderr together.</summary>
    private static async Task<(int Code, string Output)> RunProcessAsync(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string> env, TimeSpan timeout, string directory)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            return (-1, $"timed out after {timeout}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private static string Logs(string dir)
    {
        var logs = Path.Combine(dir, "logs");
        return Directory.Exists(logs)
            ? string.Join(Environment.NewLine, Directory.GetFiles(logs).Select(f => $"--- {Path.GetFileName(f)}{Environment.NewLine}{string.Join(Environment.NewLine, File.ReadAllLines(f).TakeLast(15))}"))
            : "";
    }

    private static Process StartRedis(string executable, string work, string name, params string[] args)
    {
        Directory.CreateDirectory(Path.Combine(work, name));
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.Combine(work, name) };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void StopProcess(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (RedisException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static bool IsAlive(int pid) =>
        File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].Equals("Z", StringComparison.Ordinal);

    private static bool IsOurs(int pid, string name)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains(name, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Broker.sln not found above the test folder.");
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:[0-9]+/healthz")]
    private static partial Regex HealthUrl();

    [GeneratedRegex(@"^  (?<node>node-[0-9]+) +gRPC (?<url>http://127\.0\.0\.1:[0-9]+)", RegexOptions.Multiline)]
    private static partial Regex NodeGrpc();

    [GeneratedRegex(@"^  resource-server +(?<url>http://127\.0\.0\.1:[0-9]+)", RegexOptions.Multiline)]
    private static partial Regex ResourceServerUrl();

    [GeneratedRegex(@"ProjectReference Include=""\.\./(?<name>[A-Za-z.]+)/")]
    private static partial Regex ProjectReference();

    [GeneratedRegex(@"^sentinel monitor (?<name>\S+) (?<host>\S+) (?<port>[0-9]+) (?<quorum>[0-9]+)$", RegexOptions.Multiline)]
    private static partial Regex SentinelMonitor();
}
