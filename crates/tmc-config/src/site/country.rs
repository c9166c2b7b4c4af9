//! Regulatory domain: ISO 3166-1 alpha-2 country codes and the 2.4 GHz channels each allows.
//!
//! The sensors are ESP8266s, which only speak 2.4 GHz (802.11b/g/n), so the access point always runs in that
//! band. The kernel's regulatory database stays the final authority on the Pi; this table catches the
//! common mistakes (channel 12/13 in North America, 14 anywhere) before hostapd fails at start-up.

/// Every officially assigned ISO 3166-1 alpha-2 code.
const ISO_3166_ALPHA2: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY \
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK \
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR \
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK \
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM \
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF \
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Countries under FCC-style rules, where 2.4 GHz Wi-Fi ends at channel 11.
const CHANNELS_1_TO_11: &[&str] = &["US", "CA", "TW", "PR", "GU", "AS", "VI", "MP", "UM"];

/// Whether `code` (upper case) is an assigned ISO 3166-1 alpha-2 code.
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && ISO_3166_ALPHA2.split(' ').any(|c| c == code)
}

/// The highest 2.4 GHz channel an OFDM (802.11g/n) access point may use in `country`.
pub(crate) fn max_channel(country: &str) -> u8 {
    if CHANNELS_1_TO_11.contains(&country) {
        11
    } else {
        13
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_every_assigned_code_once() {
        let codes: Vec<&str> = ISO_3166_ALPHA2.split(' ').collect();
        assert_eq!(codes.len(), 249);
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, codes, "sorted, no duplicates");
        assert!(is_country_code("DE") && is_country_code("US") && is_country_code("JP"));
        assert!(!is_country_code("XX") && !is_country_code("UK") && !is_country_code("de"));
    }

    #[test]
    fn north_america_stops_at_11() {
        assert_eq!(max_channel("US"), 11);
        assert_eq!(max_channel("DE"), 13);
        assert_eq!(max_channel("JP"), 13);
    }
}
