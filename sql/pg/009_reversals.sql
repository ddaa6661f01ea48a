-- 009_reversals.sql (PostgreSQL): M-Pesa reversals of collections
-- (docs/payments.md §M-Pesa reversal).
--
-- A reversal is a provider payment of kind 2 (it pays the customer back,
-- with a hold on the merchant's account like a disbursement) that names
-- the collection it reverses.  One reversal per collection at most.
--
-- The collection moves succeeded -> reversed in the same transaction as
-- the reversal moves to succeeded (whose ledger request carries the
-- compensating posting), by the trigger below: the two states can never
-- disagree, whatever path writes the reversal's success.  A reversal of
-- a collection that is not succeeded is refused there (the whole
-- transaction, posting included, rolls back).
ALTER TABLE prov_payments ADD COLUMN reverses_payment_id bigint
	REFERENCES payments (id);
CREATE UNIQUE INDEX prov_payments_reverses
	ON prov_payments (reverses_payment_id)
	WHERE reverses_payment_id IS NOT NULL;

CREATE FUNCTION soko_reversal_succeeded() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	orig bigint;
BEGIN
	SELECT reverses_payment_id INTO orig FROM prov_payments
	WHERE payment_id = NEW.id;
	IF orig IS NULL THEN
		RETURN NULL;
	END IF;
	UPDATE payments SET state = 5, updated_ms = NEW.updated_ms
	WHERE id = orig AND state = 3;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the reversed payment % is not succeeded', orig;
	END IF;
	INSERT INTO payment_events (payment_id, from_state, to_state, reason,
	                            at_ms)
	VALUES (orig, 3, 5, 'reversed by ' || NEW.ref, NEW.updated_ms);
	RETURN NULL;
END;
$$;
CREATE TRIGGER payments_reversal_succeeded AFTER UPDATE OF state ON payments
	FOR EACH ROW WHEN (NEW.state = 3 AND OLD.state <> 3)
	EXECUTE FUNCTION soko_reversal_succeeded();

-- What the customer must do next for a payment the provider cannot
-- finish alone (docs/payments.md §5, §7): Paystack's data.status step
-- (send_otp, send_pin, open_url, pay_offline ...) with its display_text
-- and url, Orange's payment page (open_url, payment_url).  Shown by the
-- API while the payment is open; never a secret.
ALTER TABLE prov_payments ADD COLUMN next_step text NOT NULL DEFAULT '';
ALTER TABLE prov_payments ADD COLUMN next_text text NOT NULL DEFAULT '';
ALTER TABLE prov_payments ADD COLUMN next_url text NOT NULL DEFAULT '';
