//! RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string every party derives from a
//! JSON value, so that an entry hashed by the gateway can be re-hashed by an auditor's own code.
//!
//! The rules: no whitespace; object members sorted by their names compared as UTF-16 code units;
//! strings with only `"`, `\` and control characters escaped (the short forms `\b \t \n \f \r`,
//! otherwise `\u00xx` in lowercase hex); numbers as ECMAScript's `Number.prototype.toString`
//! prints the IEEE 754 double they denote (so `1.0` is `1`, `1e21` is `1e+21`, and an integer
//! beyond 2^53 loses the digits a double cannot hold, exactly as in every JCS implementation).

use serde_json::Value;

/// The RFC 8785 canonical form of `value`.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => {
            // serde_json (without arbitrary precision) only holds finite numbers, and every one
            // of them has an f64 reading, which is the value JCS serialises.
            let double = number.as_f64().unwrap_or(0.0);
            out.push_str(ryu_js::Buffer::new().format_finite(double));
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (position, (name, member)) in sorted.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_value(member, out);
            }
            out.push('}');
        }
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test JSON parses");
        to_canonical_string(&value)
    }

    /// RFC 8785 §3.2.2 / Appendix: the worked example of the specification.
    #[test]
    fn rfc8785_example_from_section_3_2_2() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canon(input), expected);
    }

    /// RFC 8785 §3.2.3: members sorted by UTF-16 code units, not by code points or UTF-8 bytes.
    #[test]
    fn rfc8785_sorting_example_uses_utf16_code_units() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon(input), expected);
    }

    /// RFC 8785 Appendix B: IEEE 754 values and their canonical text.
    #[test]
    fn rfc8785_appendix_b_number_serialisation() {
        let cases: [(f64, &str); 14] = [
            (0.0, "0"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (-5e-324, "-5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992"),
            (-9007199254740992.0, "-9007199254740992"),
            (295147905179352830000.0, "295147905179352830000"),
            (9.999999999999997e22, "9.999999999999997e+22"),
            (1e23, "1e+23"),
            (999999999999999700000.0, "999999999999999700000"),
            (1e21, "1e+21"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
        ];
        for (double, expected) in cases {
            assert_eq!(to_canonical_string(&json!(double)), expected, "{double:e}");
        }
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_read_as_doubles() {
        assert_eq!(canon("9007199254740993"), "9007199254740992");
        assert_eq!(canon("18446744073709551615"), "18446744073709552000");
        assert_eq!(canon("-42"), "-42");
    }

    #[test]
    fn control_characters_are_escaped_in_lowercase_hex_and_nothing_else_is() {
        let value = json!("\u{1}\u{1f}\u{7f}\u{2028}é\t");
        assert_eq!(
            to_canonical_string(&value),
            "\"\\u0001\\u001f\u{7f}\u{2028}é\\t\""
        );
    }

    #[test]
    fn nested_structures_have_no_whitespace() {
        assert_eq!(
            canon(r#"{ "b" : [ 1 , { "d" : 2, "c" : [] } ], "a" : {} }"#),
            r#"{"a":{},"b":[1,{"c":[],"d":2}]}"#
        );
    }
}
