using Broker.Cli;
using Broker.Cli.Commands;

namespace Broker.Client.Tests;

/// <summary>brokerctl's tables (Spectre.Console, no border): the shape scripts and people read.</summary>
public sealed class PlainTableTests
{
    [Fact]
    public void Columns_are_two_spaces_apart_under_a_header_and_lines_carry_no_trailing_spaces()
    {
        var output = new StringWriter();

        OutputFormat.WriteColumns(output, ["ID", "AGENT", "NOTE"], [["apr_1", "spiffe://dev.local/agents/a", ""], ["apr_22", "b", "last"]]);

        Assert.Equal(
            "ID      AGENT                        NOTE\n"
            + "apr_1   spiffe://dev.local/agents/a\n"
            + "apr_22  b                            last\n",
            output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void A_long_listing_stays_aligned_from_the_first_row_to_the_last()
    {
        // More rows than one render takes; the widest cell comes last.
        var rows = Enumerable.Range(0, 1000).Select(i => (IReadOnlyList<string>)[$"r{i}", i == 999 ? new string('w', 40) : "v", "end"]).ToList();
        var output = new StringWriter();

        OutputFormat.WriteColumns(output, ["ID", "VALUE", "LAST"], rows);

        var lines = output.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.Equal(1001, lines.Length);
        Assert.Equal("ID    VALUE" + new string(' ', 37) + "LAST", lines[0]);
        Assert.All(lines.Skip(1), line => Assert.Equal(6 + 42, line.IndexOf("end", StringComparison.Ordinal)));
    }

    [Fact]
    public void An_empty_column_is_as_wide_as_its_header()
    {
        var output = new StringWriter();

        OutputFormat.WriteColumns(output, ["A", "B", "C"], [["1", "", "3"]]);

        Assert.Equal("A  B  C\n1     3\n", output.ToString().ReplaceLineEndings("\n"));

        var unheaded = new StringWriter();
        OutputFormat.WriteColumns(unheaded, null, [["1", "", "3"], ["22", "", ""]]);
        Assert.Equal("1     3\n22\n", unheaded.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Key_value_lines_align_values_two_spaces_after_the_longest_key()
    {
        var output = new StringWriter();

        OutputFormat.WriteTable(output, [("token_id", "t1"), ("policy_digest", "sha256:ab")]);

        Assert.Equal("token_id       t1\npolicy_digest  sha256:ab\n", output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void A_long_cell_is_never_wrapped_to_a_console_width()
    {
        var token = "eyJ" + new string('x', 3000);
        var output = new StringWriter();

        OutputFormat.WriteTable(output, [("access_token", token)]);

        Assert.Equal("access_token  " + token + "\n", output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Control_characters_in_a_cell_become_spaces_so_no_field_can_break_a_row_or_send_an_escape()
    {
        var output = new StringWriter();

        OutputFormat.WriteColumns(output, ["REASON", "ACTOR"], [["line one\nline two\t\u001b[31mred", "ann"]], colour: true);

        var lines = output.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("line one line two  [31mred  ann", lines[1], StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', lines[1]);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Headers_are_bold_only_when_colour_is_on(bool colour, bool plain)
    {
        var output = new StringWriter();

        OutputFormat.WriteColumns(output, ["ID", "REASON"], [["1", "why"]], colour);

        Assert.Equal(plain, !output.ToString().Contains('\u001b', StringComparison.Ordinal));
        Assert.EndsWith("1   why\n", output.ToString().ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, null, null, true)]
    [InlineData(true, null, null, false)]
    [InlineData(false, "1", null, false)]
    [InlineData(false, "", null, true)]
    [InlineData(false, null, "dumb", false)]
    [InlineData(false, null, "xterm-256color", true)]
    public void Colour_needs_a_terminal_no_NO_COLOR_and_a_TERM_that_is_not_dumb(bool redirected, string? noColor, string? term, bool expected)
    {
        var environment = new Dictionary<string, string?> { ["NO_COLOR"] = noColor, ["TERM"] = term };

        Assert.Equal(expected, CliContext.AllowsColour(redirected, name => environment.GetValueOrDefault(name)));
    }
}
