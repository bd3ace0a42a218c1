"""One module per AWS service: moto's fixes (patches of its models and responses) and the service's
own validation rules, as AWS documents them."""
