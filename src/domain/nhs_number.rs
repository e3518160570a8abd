//! The NHS number: ten digits with a Modulus 11 check digit (DESIGN §9).

use std::fmt;

use serde::{Serialize, Serializer};

use super::parse::ParseError;

/// A valid NHS number, stored and emitted as ten digits without spaces.
/// `Debug` hides all but the last four digits so it cannot leak through logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Accepts ten digits, optionally grouped with spaces (`943 476 5919`).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let err = |msg: &str| ParseError::new("invalid_nhs_number", "nhs_number", msg);
        let digits: String = raw.trim().chars().filter(|c| *c != ' ').collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("must be 10 digits"));
        }
        let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        match check_digit(&values[..9]) {
            None => Err(err("is not a valid NHS number (check digit)")),
            Some(check) if check != values[9] => {
                Err(err("is not a valid NHS number (check digit)"))
            }
            Some(_) => Ok(Self(digits)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check digit for nine leading digits, or `None` when it would be 10 (such
/// numbers are never issued).
pub fn check_digit(first_nine: &[u32]) -> Option<u32> {
    let sum: u32 = first_nine.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check),
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhsNumber(******{})", &self.0[6..])
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_valid_numbers_parse() {
        for n in ["9912003888", "9449305552", "9434765919", "943 476 5919"] {
            assert!(NhsNumber::parse(n).is_ok(), "{n}");
        }
        assert_eq!(NhsNumber::parse("943 476 5919").unwrap().as_str(), "9434765919");
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        for n in
            ["", "943476591", "94347659190", "943476591x", "9434-765919", "９４３４７６５９１９"]
        {
            let e = NhsNumber::parse(n).unwrap_err();
            assert_eq!(e.code, "invalid_nhs_number", "{n}");
        }
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        assert!(NhsNumber::parse("9434765918").is_err());
    }

    #[test]
    fn check_value_ten_is_rejected_for_every_final_digit() {
        // 000000001: sum = 2, 11 - 2 = 9; find a prefix whose check value is 10.
        let prefix = [0, 0, 0, 0, 0, 0, 0, 1, 0]; // sum = 3 → 11 - 3 = 8
        assert_eq!(check_digit(&prefix), Some(8));
        let ten = [0, 0, 0, 0, 0, 0, 0, 0, 5]; // sum = 10 → 11 - 10 = 1
        assert_eq!(check_digit(&ten), Some(1));
        let ten = [0, 0, 0, 0, 0, 0, 0, 0, 6]; // sum = 12 → r = 1 → check 10
        assert_eq!(check_digit(&ten), None);
        for last in 0..10 {
            assert!(NhsNumber::parse(&format!("000000006{last}")).is_err());
        }
    }

    #[test]
    fn debug_hides_the_number() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert!(!format!("{n:?}").contains("943476"));
    }

    fn valid_number() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(0u32..10, 9).prop_filter_map("check value 10", |mut d| {
            let check = check_digit(&d)?;
            d.push(check);
            Some(d)
        })
    }

    fn render(d: &[u32]) -> String {
        d.iter().map(|v| char::from_digit(*v, 10).unwrap()).collect()
    }

    proptest! {
        #[test]
        fn every_generated_valid_number_parses(d in valid_number(), spaced in any::<bool>()) {
            let s = render(&d);
            let input = if spaced { format!("{} {} {}", &s[..3], &s[3..6], &s[6..]) } else { s.clone() };
            let parsed = NhsNumber::parse(&input).unwrap();
            prop_assert_eq!(parsed.as_str(), s.as_str());
        }

        #[test]
        fn every_single_digit_corruption_is_rejected(d in valid_number(), pos in 0usize..10, delta in 1u32..10) {
            let mut bad = d.clone();
            bad[pos] = (bad[pos] + delta) % 10;
            prop_assert!(NhsNumber::parse(&render(&bad)).is_err());
        }
    }
}
