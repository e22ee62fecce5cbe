using System.Text.Json.Nodes;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Monitor.Tests;

/// <summary>The wire protocol against a real server: greeting, negotiation, envelopes, ids, errors.</summary>
public sealed class SessionTests
{
    [Fact]
    public async Task The_greeting_has_QEMUs_shape_and_ends_in_CRLF()
    {
        await using var t = TestVm.Counting();
        using var q = new RawQmp(t.SocketPath);
        string line = q.ReadLine();
        Assert.Matches("""^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": "SharpVmm [^"]+"\}, "capabilities": \[\]\}\}$""", line);
        q.Send("{\"execute\": \"qmp_capabilities\"}\n");
        Assert.Equal("{\"return\": {}}", q.ReadLine());
        var version = q.Execute("{\"execute\": \"query-version\"}");
        Assert.Equal(JsonNode.Parse(line)!["QMP"]!["version"]!.ToJsonString(), version["return"]!.ToJsonString());
    }

    [Fact]
    public async Task Commands_are_refused_until_capabilities_are_negotiated_and_only_once()
    {
        await using var t = TestVm.Counting();
        using var q = new RawQmp(t.SocketPath);
        q.ReadLine();
        q.Send("{\"execute\": \"query-status\"}\n");
        Assert.Equal("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities negotiation with 'qmp_capabilities'\"}}", q.ReadLine());
        var oob = q.Execute("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
        Assert.Equal("GenericError", oob["error"]!["class"]!.GetValue<string>());
        Assert.Equal("{\"return\": {}}", QmpJson.Format(q.Execute("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}}")));
        var again = q.Execute("{\"execute\": \"qmp_capabilities\"}");
        Assert.Equal("CommandNotFound", again["error"]!["class"]!.GetValue<string>());
        Assert.Equal("Capabilities negotiation is already complete, command ignored", again["error"]!["desc"]!.GetValue<string>());
    }

    [Fact]
    public async Task Ids_come_back_verbatim_on_replies_and_errors()
    {
        await using var t = TestVm.Counting();
        using var q = RawQmp.Negotiated(t.SocketPath);
        q.Send("{\"execute\": \"query-status\", \"id\": [1, {\"a\": 2.50, \"b\": null}]}\n");
        Assert.EndsWith(", \"id\": [1, {\"a\": 2.50, \"b\": null}]}", q.ReadLine());
        q.Send("{\"execute\": \"nope\", \"id\": \"x-1\"}\n");
        Assert.Equal("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}, \"id\": \"x-1\"}", q.ReadLine());
        q.Send("{\"execute\": 5, \"id\": null}\n");
        Assert.Equal("{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}, \"id\": null}", q.ReadLine());
    }

    [Fact]
    public async Task Malformed_input_gets_GenericError_and_the_session_carries_on()
    {
        await using var t = TestVm.Counting();
        using var q = RawQmp.Negotiated(t.SocketPath);
        q.Send("foo\n");
        Assert.Equal("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'foo'\"}}", q.ReadLine());
        q.Send("{\"execute\": }\n");
        Assert.StartsWith("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, ", q.ReadLine());
        q.Send("}\n");
        Assert.Equal("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, expecting value\"}}", q.ReadLine());
        q.Send("[1, 2]\n");
        Assert.Equal("{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}", q.ReadLine());
        q.Send("{\"execute\": \"query-status\", \"arguments\": [1]}\n");
        Assert.Contains("'arguments' must be an object", q.ReadLine());
        q.Send("{\"execute\": \"query-status\", \"bogus\": 1}\n");
        Assert.Contains("QMP input member 'bogus' is unexpected", q.ReadLine());
        q.Send("{\"execute\": \"query-status\", \"arguments\": {\"x\": \"\xff\"}}\n");
        Assert.Contains("GenericError", q.ReadLine());
        // Requests may span lines and share them.
        q.Send("{\"execute\":\n \"query-status\",\n \"id\": 1}{\"execute\": \"query-status\", \"id\": 2}\n");
        Assert.EndsWith("\"id\": 1}", q.ReadLine());
        Assert.EndsWith("\"id\": 2}", q.ReadLine());
        Assert.StartsWith("{\"return\": {\"status\": ", q.Execute("{\"execute\": \"query-status\"}").ToJsonString().Replace(":", ": "));
    }

    [Fact]
    public async Task Arguments_are_checked_with_QEMUs_messages()
    {
        await using var t = TestVm.Counting();
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        async Task<QmpException> Fails(string cmd, string args)
            => await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync(cmd, (JsonObject)JsonNode.Parse(args)!));
        Assert.Equal("Parameter 'x' is unexpected", (await Fails("query-status", "{\"x\": 1}")).Description);
        Assert.Equal("Parameter 'command-line' is missing", (await Fails("human-monitor-command", "{}")).Description);
        Assert.Equal("Invalid parameter type for 'command-line', expected: string", (await Fails("human-monitor-command", "{\"command-line\": 5}")).Description);
        Assert.Equal("Invalid parameter type for 'cpu-index', expected: integer", (await Fails("human-monitor-command", "{\"command-line\": \"info status\", \"cpu-index\": 1.5}")).Description);
        Assert.Equal("Parameter 'cpu-index' expects a CPU number", (await Fails("human-monitor-command", "{\"command-line\": \"info status\", \"cpu-index\": 9}")).Description);
        Assert.All(new[] { await Fails("query-status", "{\"x\": 1}") }, e => Assert.Equal("GenericError", e.ErrorClass));
    }

    [Fact]
    public async Task Query_commands_lists_exactly_what_is_implemented_and_unbuilt_features_are_unknown()
    {
        await using var t = TestVm.Counting();
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        var names = ((JsonArray)(await c.ExecuteAsync("query-commands"))!).Select(n => n!["name"]!.GetValue<string>()).Order().ToArray();
        Assert.Equal(new[]
        {
            "balloon", "closefd", "cont", "getfd", "human-monitor-command", "migrate", "migrate-continue", "migrate-incoming", "migrate-set-capabilities", "migrate-set-parameters", "migrate_cancel",
            "qmp_capabilities", "query-balloon", "query-block", "query-blockstats", "query-commands", "query-cpus-fast", "query-memory-size-summary",
            "query-migrate", "query-migrate-capabilities", "query-migrate-parameters", "query-qmp-schema", "query-status", "query-version", "quit", "snapshot-load", "snapshot-save",
            "stop", "system_powerdown", "system_reset", "x-query-jit", "x-query-ksm",
        }, names);
        foreach (string missing in new[] { "savevm", "query-pci", "device_add" })
        {
            var ex = await Assert.ThrowsAsync<QmpException>(() => c.ExecuteAsync(missing));
            Assert.Equal("CommandNotFound", ex.ErrorClass);
            Assert.Equal($"The command {missing} has not been found", ex.Description);
        }
        // Every listed command answers something other than CommandNotFound.
        foreach (string name in names.Except(["quit", "system_powerdown", "qmp_capabilities", "human-monitor-command"]))
        {
            try { await c.ExecuteAsync(name); }
            catch (QmpException ex) { Assert.NotEqual("CommandNotFound", ex.ErrorClass); }
        }
    }

    [Fact]
    public async Task Commands_registered_later_appear_in_query_commands()
    {
        await using var t = TestVm.Counting();
        t.Server.Commands.Register("x-test-later", _ => new JsonArray());
        await using var c = await QmpClient.ConnectAndNegotiateAsync(t.SocketPath);
        Assert.Equal("[]", (await c.ExecuteAsync("x-test-later"))!.ToJsonString());
        Assert.Contains("x-test-later", (await c.ExecuteAsync("query-commands"))!.ToJsonString());
    }
}
