using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpVmm.Monitor.Client;
using SharpVmm.Monitor.Protocol;

namespace SharpVmm.Cli.Qmp;

/// <summary>
/// <c>sharpvmm qmp ADDRESS COMMAND [JSON]</c>: one QMP command against a running SharpVmm (or QEMU). Prints the
/// "return" value as JSON and exits 0; an error reply goes to stderr as "CLASS: desc" with exit code 1.
/// </summary>
public static class QmpCommand
{
    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var address = new Argument<string>("address") { Description = "The monitor: a UNIX socket path, unix:PATH or tcp:HOST:PORT" };
        var command = new Argument<string>("command") { Description = "QMP command, e.g. query-status, stop, cont, human-monitor-command" };
        var arguments = new Argument<string?>("arguments")
        {
            Description = "Command arguments as a JSON object, e.g. '{\"command-line\": \"info registers\"}'",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var timeout = new Option<double>("--timeout")
        {
            Description = "Seconds to wait for the server before giving up",
            DefaultValueFactory = _ => 10,
            HelpName = "SECONDS",
        };
        var cmd = new Command("qmp", "Send one QMP command to a running VM's monitor (sharpvmm run --qmp ...) and print the result as JSON")
        {
            address, command, arguments, timeout,
        };
        cmd.SetAction((pr, ct) => RunAsync(pr.GetValue(address)!, pr.GetValue(command)!, pr.GetValue(arguments), pr.GetValue(timeout),
            pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error, ct));
        return cmd;
    }

    public static async Task<int> RunAsync(string address, string command, string? argumentsJson, double timeoutSeconds,
        TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        JsonObject? args = null;
        if (!string.IsNullOrWhiteSpace(argumentsJson))
        {
            try
            {
                args = JsonNode.Parse(argumentsJson) as JsonObject;
            }
            catch (JsonException ex)
            {
                await stderr.WriteLineAsync($"sharpvmm: the arguments are not valid JSON: {OneLine(ex.Message)}");
                return 2;
            }
            if (args is null)
            {
                await stderr.WriteLineAsync("sharpvmm: the arguments must be a JSON object, e.g. '{\"command-line\": \"info status\"}'");
                return 2;
            }
        }
        if (timeoutSeconds <= 0 || double.IsNaN(timeoutSeconds))
        {
            await stderr.WriteLineAsync("sharpvmm: --timeout must be a positive number of seconds");
            return 2;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await using var client = await QmpClient.ConnectAndNegotiateAsync(address, deadline.Token);
            var result = await client.ExecuteAsync(command, args, deadline.Token);
            await stdout.WriteLineAsync(result is null ? "null" : result.ToJsonString(Pretty));
            return 0;
        }
        catch (QmpException ex)
        {
            await stderr.WriteLineAsync($"{ex.ErrorClass}: {OneLine(ex.Description)}");
            return 1;
        }
        catch (QmpConnectionException ex)
        {
            await stderr.WriteLineAsync($"sharpvmm: {OneLine(ex.Message)}");
            return 1;
        }
        catch (QmpAddressException ex)
        {
            await stderr.WriteLineAsync($"sharpvmm: {OneLine(ex.Message)}");
            return 2;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            await stderr.WriteLineAsync($"sharpvmm: no answer from the QMP server at {address} within {timeoutSeconds} s");
            return 1;
        }
    }

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
