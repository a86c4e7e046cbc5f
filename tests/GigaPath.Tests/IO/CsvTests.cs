using NUnit.Framework;

namespace GigaPath.Tests.IO;

/// <summary>The one CSV reader (cohort manifests, label tables, attention files): RFC 4180 quoting.</summary>
public class CsvTests
{
    [Test]
    public void QuotedFieldsHoldCommasQuotesAndLineBreaks()
    {
        var rows = Csv.Parse("slide_id,path\r\n\"a, b\",\"say \"\"hi\"\"\"\n\n\"two\nlines\",x\n", "m.csv");
        Assert.That(rows.Select(r => r.Line), Is.EqualTo(new[] { 1, 2, 4 }), "blank lines skipped; a row is numbered by its first line");
        Assert.That(rows[1].Fields, Is.EqualTo(new[] { "a, b", "say \"hi\"" }));
        Assert.That(rows[2].Fields, Is.EqualTo(new[] { "two\nlines", "x" }));
    }

    [Test]
    public void BothEntryPointsRefuseTheSameMalformedQuoting()
    {
        Assert.That(Assert.Throws<GigaPathException>(() => Csv.Parse("a\n\"open,b\n", "m.csv"))!.Message,
            Is.EqualTo("m.csv, line 2: unterminated quoted field"));
        Assert.That(Assert.Throws<GigaPathException>(() => Csv.Parse("\"a\"b,c\n", "m.csv"))!.Message,
            Is.EqualTo("m.csv, line 1: unexpected text after a quoted field"));
        Assert.That(Assert.Throws<GigaPathException>(() => Csv.ParseLine("\"a\"b,c", "l.csv:3"))!.Message,
            Is.EqualTo("l.csv:3: unexpected text after a quoted field"));
        Assert.That(Assert.Throws<GigaPathException>(() => Csv.ParseLine("\"a,c", "l.csv:3"))!.Message,
            Is.EqualTo("l.csv:3: unterminated quoted field"));
    }

    [Test]
    public void ParseLineTrimsFieldsAndRoundTripsTheWriter()
    {
        Assert.That(Csv.ParseLine(" a ,\"b,c\" ,", "x"), Is.EqualTo(new[] { "a", "b,c", "" }));
        var fields = new[] { "plain", "with,comma", "with \"quote\"", "" };
        Assert.That(Csv.ParseLine(Csv.Line(fields), "x"), Is.EqualTo(fields));
    }
}
