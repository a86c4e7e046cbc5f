using System.Buffers.Binary;
using System.Text;

namespace GigaPath.Weights;

/// <summary>An ordered pickled dict (plain dict or collections.OrderedDict).</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = new();

    public object? Get(string key) => Items.FirstOrDefault(i => i.Key is string s && s == key).Value;

    public void Set(object? key, object? value)
    {
        int i = Items.FindIndex(kv => Equals(kv.Key, key));
        if (i >= 0) Items[i] = new(key, value);
        else Items.Add(new(key, value));
    }
}

/// <summary>A tensor as described in the pickle: where its bytes live and how to view them.</summary>
internal sealed record PickledTensor(string StorageKey, TensorDType DType, long Offset, long[] Shape, long[] Stride)
{
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Stride[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }

    /// <summary>Elements of the storage the view reaches (64-bit, overflow-checked: see <see cref="Check"/>).</summary>
    public long StorageElementsNeeded()
    {
        if (Shape.Any(s => s == 0)) return Offset;
        long last = Offset;
        for (int i = 0; i < Shape.Length; i++)
            last = checked(last + (Shape[i] - 1) * Stride[i]);
        return checked(last + 1);
    }

    public long StorageBytesNeeded() => checked(StorageElementsNeeded() * TensorDTypes.SizeOf(DType));

    /// <summary>
    /// Throws through <paramref name="bad"/> when the shape, strides or offset are negative, or when the tensor's size
    /// or the storage it reaches does not fit in 64 bits: a hostile pickle must not overflow size arithmetic.
    /// </summary>
    public void Check(Func<string, Exception> bad)
    {
        string what = $"tensor of shape [{string.Join(", ", Shape)}] stride [{string.Join(", ", Stride)}] offset {Offset}";
        if (Shape.Any(s => s < 0)) throw bad($"{what}: a negative dimension");
        if (Stride.Any(s => s < 0)) throw bad($"{what}: a negative stride");
        if (Offset < 0) throw bad($"{what}: a negative storage offset");
        try
        {
            long elements = Shape.Aggregate(1L, (a, b) => checked(a * b));
            _ = checked(elements * TensorDTypes.SizeOf(DType));
            _ = StorageBytesNeeded();
        }
        catch (OverflowException)
        {
            throw bad($"{what}: its size does not fit in 64 bits");
        }
    }
}

/// <summary>
/// A pickle interpreter that never executes code. Only the globals a PyTorch state dict needs are allowed
/// (OrderedDict, tensor rebuild functions, storage types); a few inert types that training scripts put next to
/// the weights (argparse.Namespace, numpy scalars) become opaque values. Any other global is an error naming it.
/// </summary>
internal sealed class SafeUnpickler
{
    private sealed record Global(string Module, string Name)
    {
        public string FullName => $"{Module}.{Name}";
    }

    private sealed record StorageRef(string Key, TensorDType DType);

    /// <summary>A value we keep without interpreting (never called, never constructed).</summary>
    public sealed record Opaque(string TypeName);

    private sealed class Mark { public static readonly Mark Instance = new(); }

    private static readonly Dictionary<string, TensorDType> StorageTypes = new()
    {
        ["FloatStorage"] = TensorDType.F32,
        ["DoubleStorage"] = TensorDType.F64,
        ["HalfStorage"] = TensorDType.F16,
        ["BFloat16Storage"] = TensorDType.BF16,
        ["LongStorage"] = TensorDType.I64,
        ["IntStorage"] = TensorDType.I32,
        ["ShortStorage"] = TensorDType.I16,
        ["CharStorage"] = TensorDType.I8,
        ["ByteStorage"] = TensorDType.U8,
        ["BoolStorage"] = TensorDType.Bool,
    };

    private static readonly HashSet<string> AllowedCallables = new()
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter",
        "builtins.set",
        "builtins.frozenset",
    };

    private static readonly HashSet<string> InertTypes = new()
    {
        "argparse.Namespace",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.dtype",
        "torch.device",
        "torch.Size",
    };

    private readonly string _source;

    public SafeUnpickler(string source) => _source = source;

    public object? Load(byte[] data)
    {
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        int pos = 0;

        Exception Bad(string msg) => new WeightFormatException($"{_source}: pickle at byte {pos}: {msg}");
        byte U8() => pos < data.Length ? data[pos++] : throw Bad("unexpected end of data");
        ReadOnlySpan<byte> Take(long n)
        {
            if (n < 0 || pos + n > data.Length) throw Bad("unexpected end of data");
            var s = new ReadOnlySpan<byte>(data, pos, (int)n);
            pos += (int)n;
            return s;
        }
        object? Pop()
        {
            if (stack.Count == 0) throw Bad("stack underflow");
            var v = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return v;
        }
        List<object?> PopMark()
        {
            int i = stack.FindLastIndex(o => o is Mark);
            if (i < 0) throw Bad("MARK not found");
            var items = stack.GetRange(i + 1, stack.Count - i - 1);
            stack.RemoveRange(i, stack.Count - i);
            return items;
        }
        string Line()
        {
            int start = pos;
            while (pos < data.Length && data[pos] != (byte)'\n') pos++;
            if (pos >= data.Length) throw Bad("unterminated line");
            var s = Encoding.ASCII.GetString(data, start, pos - start);
            pos++;
            return s;
        }

        while (true)
        {
            byte op = U8();
            switch (op)
            {
                case 0x80: U8(); break; // PROTO
                case 0x95: Take(8); break; // FRAME
                case (byte)'.': return Pop(); // STOP
                case (byte)'(': stack.Add(Mark.Instance); break;
                case (byte)'}': stack.Add(new PickleDict()); break;
                case (byte)']': stack.Add(new List<object?>()); break;
                case (byte)')': stack.Add(Array.Empty<object?>()); break;
                case (byte)'N': stack.Add(null); break;
                case 0x88: stack.Add(true); break;
                case 0x89: stack.Add(false); break;
                case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': stack.Add((long)U8()); break;
                case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a: // LONG1
                {
                    int n = U8();
                    var b = Take(n);
                    long v = 0;
                    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
                    if (n > 0 && n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
                    stack.Add(v);
                    break;
                }
                case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'X': { var n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                case 0x8c: { int n = U8(); stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                case 0x8d: { var n = BinaryPrimitives.ReadInt64LittleEndian(Take(8)); stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                case (byte)'T': { var n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); stack.Add(Encoding.Latin1.GetString(Take(n))); break; }
                case (byte)'U': { int n = U8(); stack.Add(Encoding.Latin1.GetString(Take(n))); break; }
                case (byte)'B': { var n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); stack.Add(Take(n).ToArray()); break; }
                case (byte)'C': { int n = U8(); stack.Add(Take(n).ToArray()); break; }
                case 0x8e: { var n = BinaryPrimitives.ReadInt64LittleEndian(Take(8)); stack.Add(Take(n).ToArray()); break; }
                case (byte)'q': memo[U8()] = stack[^1]; break;
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = stack[^1]; break;
                case 0x94: memo[memo.Count] = stack[^1]; break; // MEMOIZE
                case (byte)'h': { long k = U8(); stack.Add(memo.TryGetValue(k, out var v) ? v : throw Bad($"memo {k} missing")); break; }
                case (byte)'j': { long k = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); stack.Add(memo.TryGetValue(k, out var v) ? v : throw Bad($"memo {k} missing")); break; }
                case (byte)'t': stack.Add(PopMark().ToArray()); break;
                case 0x85: stack.Add(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; }
                case (byte)'a': { var v = Pop(); (stack[^1] as List<object?> ?? throw Bad("APPEND to a non-list")).Add(v); break; }
                case (byte)'e': { var items = PopMark(); (stack[^1] as List<object?> ?? throw Bad("APPENDS to a non-list")).AddRange(items); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); (stack[^1] as PickleDict ?? throw Bad("SETITEM on a non-dict")).Set(k, v); break; }
                case (byte)'u':
                {
                    var items = PopMark();
                    var d = stack[^1] as PickleDict ?? throw Bad("SETITEMS on a non-dict");
                    for (int i = 0; i + 1 < items.Count; i += 2) d.Set(items[i], items[i + 1]);
                    break;
                }
                case (byte)'c': // GLOBAL
                {
                    var module = Line();
                    var name = Line();
                    stack.Add(ResolveGlobal(module, name, Bad));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Bad("STACK_GLOBAL name is not a string");
                    var module = Pop() as string ?? throw Bad("STACK_GLOBAL module is not a string");
                    stack.Add(ResolveGlobal(module, name, Bad));
                    break;
                }
                case (byte)'Q': // BINPERSID
                {
                    var pid = Pop() as object?[] ?? throw Bad("persistent id is not a tuple");
                    if (pid.Length < 3 || pid[0] is not string tag || tag != "storage")
                        throw Bad("unsupported persistent id (only torch storages are allowed)");
                    var dtype = pid[1] switch
                    {
                        Global g when StorageTypes.TryGetValue(g.Name, out var dt) => dt,
                        Global g => throw Bad($"unsupported storage type {g.FullName}"),
                        _ => throw Bad("storage type is not a global"),
                    };
                    var key = pid[2]?.ToString() ?? throw Bad("storage key missing");
                    stack.Add(new StorageRef(key, dtype));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop() as object?[] ?? throw Bad("REDUCE arguments are not a tuple");
                    var fn = Pop();
                    stack.Add(Call(fn, args, Bad));
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var args = Pop() as object?[] ?? throw Bad("NEWOBJ arguments are not a tuple");
                    var cls = Pop();
                    stack.Add(Call(cls, args, Bad));
                    break;
                }
                case (byte)'b': // BUILD: state is applied only to inert objects, and ignored.
                {
                    Pop();
                    if (stack[^1] is not Opaque and not PickledTensor and not PickleDict)
                        throw Bad($"BUILD on {Describe(stack[^1])} is not allowed");
                    break;
                }
                default:
                    throw Bad($"unsupported pickle opcode 0x{op:x2}");
            }
        }
    }

    private static object ResolveGlobal(string module, string name, Func<string, Exception> bad)
    {
        var g = new Global(module, name);
        if (module == "torch" && StorageTypes.ContainsKey(name)) return g;
        if (AllowedCallables.Contains(g.FullName) || InertTypes.Contains(g.FullName)) return g;
        throw bad($"global '{g.FullName}' is not allowed in a weights file (only state-dict constructs are; nothing in the file is executed)");
    }

    private static object? Call(object? fn, object?[] args, Func<string, Exception> bad)
    {
        if (fn is not Global g) throw bad($"cannot call {Describe(fn)}");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
            {
                var d = new PickleDict();
                if (args.Length > 0 && args[0] is List<object?> pairs)
                    foreach (var p in pairs)
                        if (p is object?[] { Length: 2 } kv) d.Set(kv[0], kv[1]);
                return d;
            }
            case "torch._utils._rebuild_tensor_v2":
            case "torch._utils._rebuild_tensor":
            {
                if (args.Length < 4 || args[0] is not StorageRef storage)
                    throw bad("malformed _rebuild_tensor arguments");
                long offset = ToLong(args[1], bad);
                var shape = ToLongs(args[2], bad);
                var stride = ToLongs(args[3], bad);
                if (shape.Length != stride.Length) throw bad("tensor shape and stride lengths differ");
                var tensor = new PickledTensor(storage.Key, storage.DType, offset, shape, stride);
                tensor.Check(bad);
                return tensor;
            }
            case "torch._utils._rebuild_parameter":
                return args.Length > 0 && args[0] is PickledTensor t ? t : throw bad("malformed _rebuild_parameter arguments");
            case "builtins.set":
            case "builtins.frozenset":
                return new Opaque(g.FullName);
            default:
                if (InertTypes.Contains(g.FullName)) return new Opaque(g.FullName);
                throw bad($"calling '{g.FullName}' is not allowed");
        }
    }

    private static long ToLong(object? o, Func<string, Exception> bad) => o is long l ? l : throw bad($"expected an integer, got {Describe(o)}");

    private static long[] ToLongs(object? o, Func<string, Exception> bad) =>
        o is object?[] arr ? arr.Select(x => ToLong(x, bad)).ToArray() : throw bad($"expected a tuple of integers, got {Describe(o)}");

    public static string Describe(object? o) => o switch
    {
        null => "None",
        PickleDict => "a dict",
        PickledTensor t => $"a tensor {TensorDTypes.Code(t.DType)} [{string.Join(", ", t.Shape)}]",
        Opaque op => $"an opaque {op.TypeName}",
        string => "a string",
        long or double or bool => $"a number ({o})",
        object?[] => "a tuple",
        List<object?> => "a list",
        _ => o.GetType().Name,
    };
}
