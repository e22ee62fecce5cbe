using System.Text;
using System.Text.Json.Nodes;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;

namespace SharpVmm.Monitor.Tests;

public sealed class ProtocolTests
{
    private static List<JsonChunk> Split(params string[] feeds)
    {
        var s = new JsonStreamSplitter();
        var output = new List<JsonChunk>();
        foreach (var f in feeds) s.Feed(Encoding.UTF8.GetBytes(f), output);
        return output;
    }

    private static string Text(JsonChunk c) => Encoding.UTF8.GetString(c.Text!);

    [Fact]
    public void Splitter_cuts_values_by_balance_not_by_line()
    {
        var chunks = Split("{\"a\": 1}{\"b\"", ": [1, {\"c\": \"}{\\\"\"}]}\n  {\"d\":\n2}");
        Assert.Equal(["{\"a\": 1}", "{\"b\": [1, {\"c\": \"}{\\\"\"}]}", "{\"d\":\n2}"], chunks.Select(Text));
    }

    [Fact]
    public void Splitter_reports_a_stray_closing_bracket_and_keeps_going()
    {
        var chunks = Split("}\n{\"x\": 1}");
        Assert.Equal("JSON parse error, expecting value", chunks[0].Error);
        Assert.Equal("{\"x\": 1}", Text(chunks[1]));
    }

    [Fact]
    public void Splitter_cuts_top_level_scalars_at_delimiters()
    {
        var chunks = Split("foo 42\n\"str\"{}");
        Assert.Equal(["foo", "42", "\"str\"", "{}"], chunks.Select(Text));
    }

    [Fact]
    public void Splitter_skips_an_oversized_request_to_its_end_and_reports_it_once()
    {
        var big = "{\"execute\": \"x\", \"pad\": \"" + new string('a', JsonStreamSplitter.MaxBytes) + "\"}";
        var chunks = Split(big, "{\"ok\": true}");
        Assert.Equal(2, chunks.Count);
        Assert.Contains("larger than", chunks[0].Error);
        Assert.Equal("{\"ok\": true}", Text(chunks[1]));
    }

    [Fact]
    public void Splitter_refuses_nesting_deeper_than_the_limit()
    {
        string deep = new string('[', JsonStreamSplitter.MaxDepth + 1) + new string(']', JsonStreamSplitter.MaxDepth + 1);
        var chunks = Split(deep);
        Assert.Single(chunks);
        Assert.Contains("nested deeper", chunks[0].Error);
    }

    [Fact]
    public void Output_uses_QEMUs_separators_and_keeps_numbers_as_sent()
    {
        var id = JsonNode.Parse("[1, {\"a\": 2.50}]");
        var reply = new JsonObject { ["return"] = new JsonObject(), ["id"] = id };
        Assert.Equal("{\"return\": {}, \"id\": [1, {\"a\": 2.50}]}", QmpJson.Format(reply));
        Assert.Equal("{\"s\": \"a\\r\\n\\\"b\\\"\"}\r\n", Encoding.UTF8.GetString(QmpJson.ToLine(new JsonObject { ["s"] = "a\r\n\"b\"" })));
    }

    [Theory]
    [InlineData("{\"execute\": }", "JSON parse error, ")]
    [InlineData("foo", "JSON parse error, invalid keyword 'foo'")]
    [InlineData("42", "QMP input must be a JSON object")]
    [InlineData("{\"exec\": \"x\"}", "QMP input member 'exec' is unexpected")]
    [InlineData("{\"arguments\": {}}", "QMP input lacks member 'execute'")]
    [InlineData("{\"execute\": 5}", "QMP input member 'execute' must be a string")]
    [InlineData("{\"execute\": \"x\", \"arguments\": []}", "QMP input member 'arguments' must be an object")]
    [InlineData("{\"execute\": \"x\", \"execute\": \"y\"}", "JSON parse error, ")]
    public void Bad_envelopes_get_QEMUs_messages(string text, string expected)
    {
        Assert.Null(QmpRequest.Parse(Encoding.UTF8.GetBytes(text), out var error, out _, out _));
        Assert.Equal("GenericError", error!.ErrorClass);
        Assert.StartsWith(expected, error.Description);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'{', (byte)'"', (byte)'e', 0x85, (byte)'"', (byte)':', (byte)'1', (byte)'}' })]
    [InlineData(new byte[] { (byte)'{', (byte)'"', (byte)'e', (byte)'x', (byte)'e', (byte)'c', (byte)'u', (byte)'t', (byte)'e', (byte)'"', (byte)':', (byte)'"', 0xFF, (byte)'"', (byte)'}' })]
    public void Invalid_utf8_anywhere_is_a_parse_error_not_an_exception(byte[] text)
    {
        // Fuzzing (bench/fuzz.sh qmp) found the first: the bad byte sat in a member name, read after parsing.
        Assert.Null(QmpRequest.Parse(text, out var error, out _, out _));
        Assert.Equal("GenericError", error!.ErrorClass);
        Assert.Equal("JSON parse error, invalid UTF-8 sequence in string", error.Description);
    }

    [Fact]
    public void An_envelope_error_still_carries_the_id()
    {
        Assert.Null(QmpRequest.Parse("{\"execute\": 5, \"id\": \"abc\"}"u8.ToArray(), out _, out var id, out bool hasId));
        Assert.True(hasId);
        Assert.Equal("abc", id!.GetValue<string>());
    }

    [Theory]
    [InlineData("tcp:127.0.0.1:4444", "tcp:127.0.0.1:4444")]
    [InlineData("tcp:localhost:0", "tcp:127.0.0.1:0")]
    [InlineData("tcp:[::1]:5", "tcp:[::1]:5")]
    [InlineData("/run/vm.sock", "unix:/run/vm.sock")]
    [InlineData("unix:/run/vm.sock", "unix:/run/vm.sock")]
    public void Loopback_and_socket_paths_are_listenable(string text, string canonical)
        => Assert.Equal(canonical, QmpAddress.ForListening(text).ToString());

    [Theory]
    [InlineData("tcp:0.0.0.0:4444", "loopback only")]
    [InlineData("tcp:192.168.1.10:4444", "loopback only")]
    [InlineData("tcp:example.com:4444", "loopback only")]
    [InlineData("tcp:127.0.0.1:99999", "is not a TCP port")]
    [InlineData("tcp:127.0.0.1:x", "is not a TCP port")]
    [InlineData("tcp:4444", "tcp:HOST:PORT")]
    [InlineData("", "empty")]
    public void Other_listen_addresses_are_refused_with_a_reason(string text, string reason)
    {
        var ex = Assert.Throws<QmpAddressException>(() => QmpAddress.ForListening(text));
        Assert.Contains(reason, ex.Message);
    }

    [Fact]
    public void A_socket_path_longer_than_sun_path_is_refused()
    {
        var ex = Assert.Throws<QmpAddressException>(() => QmpAddress.ForListening("/tmp/" + new string('x', 120)));
        Assert.Contains("107 bytes", ex.Message);
    }

    [Fact]
    public void Clients_may_connect_to_any_host()
        => Assert.Equal("tcp:10.0.0.2:4444", QmpAddress.ForConnecting("tcp:10.0.0.2:4444").ToString());
}
