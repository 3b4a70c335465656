/**
 * Where Klaviyo can send SMS. Klaviyo stores SMS consent only for a phone number whose region the account has a
 * sending number for; since revision 2024-05-15 a subscribe call with SMS consent for another region is answered 400
 * (a Klaviyo staff answer on community.klaviyo.com, "Adding/Updating Profiles via API Email status 'Never
 * Subscribed'"); before it, the consent was dropped silently. Both the subscription transform (`sms_regions`) and
 * the emulator (`smsRegions`) default to every region Klaviyo SMS is available in.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

/**
 * The regions Klaviyo SMS is available in (help.klaviyo.com, "Where is Klaviyo SMS available?", article
 * 4402914866843): the United States (the 50 states; not Puerto Rico or other territories, which have region codes of
 * their own), Canada, the United Kingdom, Ireland, Germany, the Netherlands, France, Belgium, Austria, Spain,
 * Switzerland, Denmark, Sweden, Norway, Finland, Italy, Portugal, Australia and New Zealand.
 */
export const KLAVIYO_SMS_REGIONS: readonly string[] = [
  'US', 'CA', 'GB', 'IE', 'DE', 'NL', 'FR', 'BE', 'AT', 'ES', 'CH', 'DK', 'SE', 'NO', 'FI', 'IT', 'PT', 'AU', 'NZ',
];

/** The ISO 3166 region of an E.164 phone number (`+14155550100` → `US`), undefined when it has none. */
export function phoneRegion(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.country;
}
