using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.ResourceServer.Tests;

public sealed class AuthorizationRequirementTests
{
    private static ClaimsPrincipal User(params (string Type, string Value)[] claims) =>
        new(new ClaimsIdentity(claims.Select(c => new Claim(c.Type, c.Value)), "Bearer"));

    private static ClaimsPrincipal WithScope(string scope, string phase = "execution") =>
        User(("sub", "spiffe://example.org/agents/a"), ("scope", scope), ("phase", phase));

    [Theory]
    [InlineData("deploy:staging")]
    [InlineData("deploy:prod-evil")]
    [InlineData("deploy:production")]
    [InlineData("deploy:pro")]
    [InlineData("DEPLOY:PROD")]
    [InlineData("xdeploy:prod")]
    [InlineData("deploy:prod,repo:read")]
    [InlineData("")]
    public void Scope_requirement_refuses_anything_but_the_exact_scope(string granted)
    {
        Assert.False(new BrokerScopeRequirement("deploy:prod").IsSatisfiedBy(WithScope(granted)));
    }

    [Theory]
    [InlineData("deploy:prod")]
    [InlineData("repo:read deploy:prod")]
    [InlineData("deploy:prod repo:read")]
    [InlineData("  deploy:prod  ")]
    public void Scope_requirement_accepts_the_scope_anywhere_in_the_list(string granted)
    {
        Assert.True(new BrokerScopeRequirement("deploy:prod").IsSatisfiedBy(WithScope(granted)));
    }

    [Fact]
    public void Every_listed_scope_is_required()
    {
        var requirement = new BrokerScopeRequirement("deploy:prod", "repo:read");
        Assert.False(requirement.IsSatisfiedBy(WithScope("deploy:prod")));
        Assert.True(requirement.IsSatisfiedBy(WithScope("repo:read deploy:prod")));
    }

    [Fact]
    public void Scope_claims_may_also_arrive_one_per_claim()
    {
        var user = User(("scope", "repo:read"), ("scope", "deploy:prod"));
        Assert.True(new BrokerScopeRequirement("deploy:prod", "repo:read").IsSatisfiedBy(user));
    }

    [Fact]
    public void A_user_without_a_scope_claim_is_refused()
    {
        Assert.False(new BrokerScopeRequirement("repo:read").IsSatisfiedBy(User(("sub", "x"))));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("deploy:prod repo:read")]
    [InlineData("deploy:prod\t")]
    public void Scope_requirement_refuses_malformed_scopes_at_registration(string scope)
    {
        Assert.Throws<ArgumentException>(() => new BrokerScopeRequirement(scope));
    }

    [Fact]
    public void Scope_requirement_needs_at_least_one_scope()
    {
        Assert.Throws<ArgumentException>(() => new BrokerScopeRequirement());
    }

    [Theory]
    [InlineData("execution", true)]
    [InlineData("planning", false)]
    [InlineData("recovery", false)]
    [InlineData("Execution", false)]
    [InlineData("execution ", false)]
    [InlineData("", false)]
    public void Phase_requirement_matches_the_phase_exactly(string phase, bool satisfied)
    {
        Assert.Equal(satisfied, new BrokerPhaseRequirement("execution").IsSatisfiedBy(WithScope("repo:read", phase)));
    }

    [Fact]
    public void A_token_claiming_two_phases_satisfies_neither()
    {
        var user = User(("phase", "planning"), ("phase", "execution"));
        Assert.False(new BrokerPhaseRequirement("execution").IsSatisfiedBy(user));
    }

    [Theory]
    [InlineData("Execution")]
    [InlineData("exec")]
    [InlineData("")]
    public void Phase_requirement_refuses_unknown_phases_at_registration(string phase)
    {
        Assert.Throws<ArgumentException>(() => new BrokerPhaseRequirement(phase));
    }

    [Fact]
    public async Task Policies_built_with_the_extensions_are_evaluated_by_stock_authorization()
    {
        var services = new ServiceCollection().AddLogging().AddAuthorization(options =>
        {
            options.AddPolicy("prod", p => p.RequireBrokerScope("deploy:prod").RequireBrokerPhase("execution"));
        });
        await using var provider = services.BuildServiceProvider();
        var authorization = provider.GetRequiredService<IAuthorizationService>();

        Assert.False((await authorization.AuthorizeAsync(WithScope("deploy:staging"), "prod")).Succeeded);
        Assert.False((await authorization.AuthorizeAsync(WithScope("deploy:prod-evil"), "prod")).Succeeded);
        Assert.False((await authorization.AuthorizeAsync(WithScope("deploy:prod", "planning"), "prod")).Succeeded);
        Assert.True((await authorization.AuthorizeAsync(WithScope("repo:read deploy:prod"), "prod")).Succeeded);

        // Not authenticated: refused even with the claims.
        var anonymous = new ClaimsPrincipal(new ClaimsIdentity([new Claim("scope", "deploy:prod"), new Claim("phase", "execution")]));
        Assert.False((await authorization.AuthorizeAsync(anonymous, "prod")).Succeeded);
    }

    [Fact]
    public async Task A_failed_scope_check_names_the_missing_scope()
    {
        var services = new ServiceCollection().AddLogging().AddAuthorization(options => options.AddPolicy("prod", p => p.RequireBrokerScope("deploy:prod")));
        await using var provider = services.BuildServiceProvider();
        var result = await provider.GetRequiredService<IAuthorizationService>().AuthorizeAsync(WithScope("deploy:staging"), "prod");

        var reason = Assert.Single(result.Failure!.FailureReasons);
        Assert.Contains("deploy:prod", reason.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_attributes_require_authentication_the_exact_scopes_and_the_phase()
    {
        var requirements = new IAuthorizationRequirementData[] { new RequireBrokerScopeAttribute("deploy:prod"), new RequireBrokerPhaseAttribute(BrokerPhases.Execution) }
            .SelectMany(d => d.GetRequirements()).ToList();
        var services = new ServiceCollection().AddLogging().AddAuthorization();
        await using var provider = services.BuildServiceProvider();
        var authorization = provider.GetRequiredService<IAuthorizationService>();

        Assert.True((await authorization.AuthorizeAsync(WithScope("repo:read deploy:prod"), null, requirements)).Succeeded);
        Assert.False((await authorization.AuthorizeAsync(WithScope("deploy:prod", "planning"), null, requirements)).Succeeded);
        Assert.False((await authorization.AuthorizeAsync(WithScope("deploy:production"), null, requirements)).Succeeded);
        var anonymous = new ClaimsPrincipal(new ClaimsIdentity([new Claim("scope", "deploy:prod"), new Claim("phase", "execution")]));
        Assert.False((await authorization.AuthorizeAsync(anonymous, null, requirements)).Succeeded);
        Assert.Throws<ArgumentException>(() => new RequireBrokerPhaseAttribute("deployment"));
        Assert.Throws<ArgumentException>(() => new RequireBrokerScopeAttribute("two words"));
    }
}
