using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Broker.Server.Tests.Deploy;

/// <summary>
/// deploy/kubernetes/monitoring: rendered by kubectl's kustomize, its rules checked and unit
/// tested by Prometheus's own promtool, and held to the metrics and alerts docs/observability.md
/// documents.
/// </summary>
public sealed partial class DeployArtifactsTests
{
    private static readonly string MonitoringDir = Path.Combine(DeployDir, "kubernetes", "monitoring");

    [Fact]
    public async Task Monitoring_renders_with_kustomize_and_promtool_checks_the_rules_and_passes_their_unit_tests()
    {
        var rendered = await RenderMonitoringAsync();
        var rule = rendered.Single(o => Str(o["kind"]) == "PrometheusRule");
        Assert.Single(rendered, o => Str(o["kind"]) == "PodMonitor");
        Assert.Equal("metrics", Str(((YamlMappingNode)Seq(Map(rendered.Single(o => Str(o["kind"]) == "PodMonitor"), "spec"), "podMetricsEndpoints").Single())["port"]));

        // The rule groups, exactly as the operator would load them, as a plain rules file.
        var work = Directory.CreateTempSubdirectory("broker-promtool-").FullName;
        try
        {
            var rules = new YamlMappingNode { { "groups", Map(rule, "spec")["groups"] } };
            await using (var writer = new StreamWriter(Path.Combine(work, "broker-rules.yaml")))
            {
                new YamlStream(new YamlDocument(rules)).Save(writer, assignAnchors: false);
            }

            File.Copy(Path.Combine(MonitoringDir, "alerts.test.yaml"), Path.Combine(work, "alerts.test.yaml"));

            var check = await RunToolAsync("promtool", work, "check", "rules", "broker-rules.yaml");
            Assert.True(check.ExitCode == 0, check.Output);
            Assert.Contains($"SUCCESS: {AlertNames(rule).Count} rules found", check.Output, StringComparison.Ordinal);
            var unit = await RunToolAsync("promtool", work, "test", "rules", "alerts.test.yaml");
            Assert.True(unit.ExitCode == 0, unit.Output);
            Assert.Contains("SUCCESS", unit.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task Every_documented_alert_is_a_rule_and_every_rule_and_panel_uses_only_documented_metrics()
    {
        var rendered = await RenderMonitoringAsync();
        var rule = rendered.Single(o => Str(o["kind"]) == "PrometheusRule");
        var observability = await File.ReadAllTextAsync(Path.Combine(Repo, "docs", "observability.md"));
        var alertsSection = observability[observability.IndexOf("## Alerts", StringComparison.Ordinal)..];
        alertsSection = alertsSection[..alertsSection.IndexOf("\n## ", 3, StringComparison.Ordinal)];
        var documentedAlerts = Regex.Matches(alertsSection, @"^\| \*\*[^*]+\*\*(?: \([a-z]+\))? `(Broker\w+)`", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToHashSet();

        Assert.Equal(documentedAlerts.Order(), AlertNames(rule).Order());
        foreach (var alert in Seq(Map(rule, "spec"), "groups").SelectMany(g => Seq(g, "rules")).Cast<YamlMappingNode>())
        {
            var labels = Map(alert, "labels");
            Assert.Contains(Str(labels["severity"]), new[] { "critical", "warning", "info" });
            Assert.False(string.IsNullOrWhiteSpace(Str(Map(alert, "annotations")["summary"])), Str(alert["alert"]));
        }

        var documentedMetrics = Regex.Matches(observability, @"^\| `(broker_[a-z_]+)` \|", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToHashSet();
        var dashboardJson = await File.ReadAllTextAsync(Path.Combine(MonitoringDir, "broker-dashboard.json"));
        var expressions = Seq(Map(rule, "spec"), "groups").SelectMany(g => Seq(g, "rules")).Select(r => Str(r["expr"]))
            .Concat(DashboardExpressions(dashboardJson))
            .ToList();
        Assert.NotEmpty(expressions);
        foreach (var expression in expressions)
        {
            // Label names start with broker_ too: drop label matchers and by/without clauses first.
            var metricsOnly = Regex.Replace(expression, @"\{[^}]*\}|\b(by|without)\s*\([^)]*\)|label_values\([^)]*\)", " ");
            foreach (var metric in Regex.Matches(metricsOnly, @"\bbroker_[a-z_]+").Select(m => Regex.Replace(m.Value, "_(bucket|count|sum)$", "")))
            {
                Assert.True(documentedMetrics.Contains(metric), $"{metric} (in `{expression}`) is not a metric docs/observability.md lists");
            }
        }
    }

    [Fact]
    public async Task The_dashboard_covers_issuance_refusals_revocation_lag_and_audit_health_and_ships_unchanged_in_its_config_map()
    {
        var dashboardJson = await File.ReadAllTextAsync(Path.Combine(MonitoringDir, "broker-dashboard.json"));
        using var dashboard = JsonDocument.Parse(dashboardJson);
        var root = dashboard.RootElement;
        Assert.Equal("broker-overview", root.GetProperty("uid").GetString());
        var panels = root.GetProperty("panels").EnumerateArray().ToList();
        var titles = panels.Select(p => p.GetProperty("title").GetString()!).ToList();
        foreach (var needed in new[] { "Issuance by outcome", "Refusals by reason", "Revocation propagation lag (p99)", "Audit writable", "Audit fsync (p99)" })
        {
            Assert.Contains(needed, titles);
        }

        // Every query names the dashboard's data source variable, so the dashboard imports anywhere.
        foreach (var panel in panels.Where(p => p.GetProperty("type").GetString() != "row"))
        {
            Assert.Equal("${datasource}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            Assert.All(panel.GetProperty("targets").EnumerateArray(), t => Assert.Equal("${datasource}", t.GetProperty("datasource").GetProperty("uid").GetString()));
        }

        var configMap = (await RenderMonitoringAsync()).Single(o => Str(o["kind"]) == "ConfigMap");
        Assert.Equal("1", Str(Map(Map(configMap, "metadata"), "labels")["grafana_dashboard"]));
        Assert.Equal(dashboardJson, Str(Map(configMap, "data")["broker-dashboard.json"]));
    }

    /// <summary>
    /// The package operators apply (<c>kubectl apply -k deploy/kubernetes</c>) renders with
    /// kubectl's own kustomize into exactly the objects the files hold, every namespaced one in
    /// the broker namespace, and no Secret (keys are mounted from Secrets the operator creates).
    /// </summary>
    [Fact]
    public async Task The_kubernetes_package_renders_with_kustomize_into_the_broker_namespace()
    {
        var render = await RunToolAsync("kubectl", Repo, "kustomize", Path.Combine(DeployDir, "kubernetes"));
        Assert.True(render.ExitCode == 0, render.Output);
        var stream = new YamlStream();
        stream.Load(new StringReader(render.Output));
        var objects = stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();

        Assert.Equal(
            ["ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "Service", "ServiceAccount"],
            objects.Select(o => Str(o["kind"])).Order(StringComparer.Ordinal).ToArray());
        Assert.All(objects.Where(o => Str(o["kind"]) != "Namespace"), o => Assert.Equal("broker", Str(Map(o, "metadata")["namespace"])));
        Assert.Equal("broker", Str(Map(objects.Single(o => Str(o["kind"]) == "Namespace"), "metadata")["name"]));
    }

    private static IEnumerable<string> DashboardExpressions(string json)
    {
        using var dashboard = JsonDocument.Parse(json);
        return dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("expr").GetString()!))
            .ToList();
    }

    private static HashSet<string> AlertNames(YamlMappingNode rule) =>
        Seq(Map(rule, "spec"), "groups").SelectMany(g => Seq(g, "rules")).Select(r => Str(r["alert"])).ToHashSet();

    private static async Task<List<YamlMappingNode>> RenderMonitoringAsync()
    {
        var render = await RunToolAsync("kubectl", Repo, "kustomize", MonitoringDir);
        Assert.True(render.ExitCode == 0, render.Output);
        var stream = new YamlStream();
        stream.Load(new StringReader(render.Output));
        return stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static async Task<(int ExitCode, string Output)> RunToolAsync(string tool, string directory, params string[] arguments)
    {
        try
        {
            return await RunProcessAsync(tool, arguments, new Dictionary<string, string>(), TimeSpan.FromMinutes(2), directory);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            var package = tool == "promtool" ? "prometheus" : "kubernetes-client";
            throw new InvalidOperationException($"The monitoring tests need {tool}: install it with 'apt-get install -y {package}' (./test.sh does).");
        }
    }
}
