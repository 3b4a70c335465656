/**
 * What `klaviyo-etl init` recognises in a table's columns: identifiers (email, phone), names, location parts, order
 * ids, totals and currencies by their names; dates and datetimes by their sample values, with the one format every
 * sample parses with (Luxon tokens, as pipeline files take them). A format two readings fit (`03/04/2021`) is not
 * guessed: the column is written commented with both.
 */
import { DateTime } from 'luxon';

/** What one column was recognised as. */
export interface ColumnGuess {
  column: string;
  /** Profile attribute, location part, or event role; undefined: not recognised (written commented). */
  role?: Role;
  /** Dates: `date` or `datetime`, the detected format, and a zone when the values carry no offset. */
  date?: { type: 'date' | 'datetime'; format: string; zone?: string; ambiguous?: string };
}

export type Role =
  | 'email'
  | 'phone_number'
  | 'first_name'
  | 'last_name'
  | 'external_id'
  | 'organization'
  | 'title'
  | 'city'
  | 'region'
  | 'country'
  | 'zip'
  | 'address1'
  | 'address2'
  | 'order_id'
  | 'value'
  | 'value_currency'
  | 'line_item';

const norm = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Normalised column names (lower case, letters and digits) per role, most specific first. */
const NAMES: [Role, RegExp][] = [
  ['email', /^(e?mail|emailaddress|customeremail|contactemail|billingemail|useremail)$/],
  ['phone_number', /^(phone|phonenumber|mobile|mobilephone|mobilenumber|cell|cellphone|telephone|tel|smsphone|billingphone|customerphone)$/],
  ['first_name', /^(firstname|first|givenname|fname|forename)$/],
  ['last_name', /^(lastname|last|surname|familyname|lname)$/],
  ['external_id', /^(customerid|userid|externalid|memberid|contactid|accountid)$/],
  ['organization', /^(company|companyname|organization|organisation|org)$/],
  ['title', /^(title|jobtitle)$/],
  ['city', /^(city|town|billingcity|shippingcity)$/],
  ['region', /^(state|province|region|billingprovince|billingstate)$/],
  ['country', /^(country|countrycode|billingcountry|shippingcountry)$/],
  ['zip', /^(zip|zipcode|postcode|postalcode|billingzip|shippingzip)$/],
  ['address1', /^(address|address1|street|billingaddress1|billingstreet)$/],
  ['address2', /^(address2|billingaddress2)$/],
  ['order_id', /^(orderid|ordernumber|orderno|ordername|order)$/],
  ['value', /^(total|ordertotal|totalprice|amount|revenue|grandtotal|value)$/],
  ['value_currency', /^(currency|currencycode)$/],
  ['line_item', /lineitem|^(sku|productname|product|quantity|qty|itemprice|price|productsku)$/],
];

/** Formats tried on a column's samples, in order; the first every sample parses with wins. */
const FORMATS: { format: string; type: 'date' | 'datetime'; offset?: boolean }[] = [
  { format: 'yyyy-MM-dd HH:mm:ss ZZZ', type: 'datetime', offset: true },
  { format: 'yyyy-MM-dd HH:mm:ss ZZ', type: 'datetime', offset: true },
  { format: 'yyyy-MM-dd HH:mm:ss', type: 'datetime' },
  { format: 'yyyy-MM-dd HH:mm', type: 'datetime' },
  { format: 'yyyy-MM-dd', type: 'date' },
  { format: 'yyyy/MM/dd', type: 'date' },
  { format: 'MM/dd/yyyy HH:mm:ss', type: 'datetime' },
  { format: 'MM/dd/yyyy HH:mm', type: 'datetime' },
  { format: 'dd/MM/yyyy HH:mm', type: 'datetime' },
  { format: 'MM/dd/yyyy', type: 'date' },
  { format: 'dd/MM/yyyy', type: 'date' },
  { format: 'M/d/yyyy', type: 'date' },
  { format: 'd/M/yyyy', type: 'date' },
  { format: 'dd.MM.yyyy', type: 'date' },
  { format: 'MM-dd-yyyy', type: 'date' },
  { format: 'dd-MM-yyyy', type: 'date' },
];

/** Readings that are told apart only by a day above 12. */
const TWINS: Record<string, string> = {
  'MM/dd/yyyy': 'dd/MM/yyyy',
  'dd/MM/yyyy': 'MM/dd/yyyy',
  'M/d/yyyy': 'd/M/yyyy',
  'd/M/yyyy': 'M/d/yyyy',
  'MM/dd/yyyy HH:mm': 'dd/MM/yyyy HH:mm',
  'dd/MM/yyyy HH:mm': 'MM/dd/yyyy HH:mm',
  'MM-dd-yyyy': 'dd-MM-yyyy',
  'dd-MM-yyyy': 'MM-dd-yyyy',
};

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** The date format every non-empty sample parses with, if any. */
export function detectDate(samples: readonly string[]): ColumnGuess['date'] {
  const values = samples.map((s) => s.trim()).filter((s) => s !== '');
  if (values.length === 0) return undefined;
  if (values.every((v) => ISO.test(v))) {
    const offset = values.every((v) => /(Z|[+-]\d{2}:?\d{2})$/.test(v));
    return { type: 'datetime', format: 'iso', ...(offset ? {} : { zone: 'UTC' }) };
  }
  const fits = (format: string) => values.every((v) => DateTime.fromFormat(v, format, { setZone: true }).isValid);
  for (const f of FORMATS) {
    if (!fits(f.format)) continue;
    const twin = TWINS[f.format];
    const ambiguous = twin && fits(twin) ? twin : undefined;
    return { type: f.type, format: f.format, ...(f.type === 'datetime' && !f.offset ? { zone: 'UTC' } : {}), ...(ambiguous ? { ambiguous } : {}) };
  }
  return undefined;
}

/** What each column is, from its name and (for dates) its sample values. */
export function recogniseColumns(columns: readonly string[], samples: readonly Record<string, string>[]): ColumnGuess[] {
  const taken = new Set<Role>();
  return columns.map((column) => {
    const n = norm(column);
    const named = NAMES.find(([role, re]) => re.test(n) && (role === 'line_item' || !taken.has(role)));
    if (named && named[0] !== 'line_item') {
      taken.add(named[0]);
      return { column, role: named[0] };
    }
    const date = detectDate(samples.map((r) => r[column] ?? ''));
    if (date) return { column, date };
    return named ? { column, role: named[0] } : { column };
  });
}

/**
 * The order id of an orders table: a recognised one; else, in a one-row-per-line-item export (Shopify's), `Name`;
 * else, with `anyId`, `id`. The column found gets the role `order_id`.
 */
export function orderIdColumn(guesses: ColumnGuess[], anyId: boolean): ColumnGuess | undefined {
  const named = guesses.find((g) => g.role === 'order_id');
  if (named) return named;
  const lineItems = guesses.some((g) => g.role === 'line_item');
  const fallback = guesses.find((g) => (lineItems && norm(g.column) === 'name') || (anyId && norm(g.column) === 'id'));
  if (fallback) fallback.role = 'order_id';
  return fallback;
}
